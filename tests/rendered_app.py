"""The container a rendered template would give, as ARM evaluates it with a parameters file."""

from __future__ import annotations

from typing import Any

from azinfer.templates import RenderedTemplates
from azinfer.local.emulator.expressions import Context, evaluate_value


def deployed_container(rendered: RenderedTemplates, **parameters: Any) -> dict[str, Any]:
    """The app's container (command, probes, image...) with the template's defaults, then the
    rendered parameters file, then ``parameters`` (a deployment by hand) applied."""
    template = rendered.template
    values = {name: spec["defaultValue"] for name, spec in template["parameters"].items() if "defaultValue" in spec}
    values |= {name: entry["value"] for name, entry in rendered.parameter_values.items()} | parameters
    context = Context(values, template.get("variables", {}))
    app = next(r for r in template["resources"] if r["type"] == "Microsoft.App/containerApps")
    [container] = app["properties"]["template"]["containers"]
    return {key: evaluate_value(value, context) for key, value in container.items() if key != "env"}
