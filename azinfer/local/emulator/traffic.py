"""Traffic rules of a container app: multiple revision mode, weights, labels, per-revision and per-label addresses.

Sources (each in docs/emulator.md): the REST spec's ``Ingress.traffic``
(``TrafficWeight``: ``revisionName``, ``weight``, ``latestRevision``,
``label``) and ``Revision.properties.fqdn``/``trafficWeight``; Microsoft's
"Traffic splitting in Azure Container Apps" (the weights of all rules add up to
100; a rule names a revision or the latest one; multiple revision mode splits
traffic between active revisions) and "Blue-green deployment in Azure
Container Apps" (a label's own address ``<app>---<label>.<env-domain>``, a
revision's ``<app>--<suffix>.<env-domain>``; a new revision gets no traffic
while the rules name the others).

Addresses: the app's ingress listener routes by the rules (a weighted random
pick per request); each revision and each label gets a listener of its own
(``127.0.0.1:{port}``: no DNS here), the revision's reported as its ``fqdn``,
the label's from ``emu.apps.label_url``. A listener's target is the app's id,
``|revision=<name>`` or ``|label=<label>`` after it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .containerapps import AppRuntime, Revision
    from .state import Resource

__all__ = ["rules", "check", "split_target", "choose", "weight_of", "address_key"]

_pick = random.Random(0)  # a fixed seed: a test's share of each revision is the same every run


def rules(app: Resource) -> list[dict[str, Any]]:
    """The app's traffic rules; none given: all traffic to the latest revision (the service's default)."""
    config = (app.input.get("properties") or {}).get("configuration") or {}
    traffic = (config.get("ingress") or {}).get("traffic")
    return list(traffic) if traffic else [{"latestRevision": True, "weight": 100}]


def check(properties: dict[str, Any]) -> str | None:
    """Why the traffic rules of a PUT/PATCH body are refused (``None``: they are not)."""
    traffic = ((properties.get("configuration") or {}).get("ingress") or {}).get("traffic")
    if not traffic:
        return None
    labels = [t["label"] for t in traffic if t.get("label")]
    if len(labels) != len(set(labels)):
        return "Traffic labels must be unique."
    for rule in traffic:
        if bool(rule.get("revisionName")) == bool(rule.get("latestRevision")):
            return "Each traffic rule names either a revisionName or latestRevision: true."
    if sum(int(t.get("weight") or 0) for t in traffic) != 100:
        return "The combined weight of all traffic rules must equal 100."
    return None


def split_target(target: str) -> tuple[str, str | None, str | None]:
    """A listener's target: (app id, ``revision``/``label``/None, its name)."""
    app_id, _, route = target.partition("|")
    kind, _, name = route.partition("=")
    return app_id, kind or None, name or None


def address_key(app_id: str, kind: str, name: str) -> str:
    """The target of the listener for one revision or label of an app."""
    return f"{app_id}|{kind}={name.lower()}"


def _target(rule: dict[str, Any], rt: AppRuntime) -> Revision | None:
    return rt.latest if rule.get("latestRevision") else rt.revision(str(rule.get("revisionName") or ""))


def choose(app: Resource, rt: AppRuntime, kind: str | None, name: str | None) -> Revision | None:
    """The revision a request goes to: the one addressed, the label's, or a weighted pick by the rules.

    :raises LookupError: the address names a revision or label the app does not have.
    """
    if kind == "revision":
        found = rt.revision(name or "")
        if found is None:
            raise LookupError(name)
        return found
    if kind == "label":
        rule = next((r for r in rules(app) if str(r.get("label") or "").lower() == name), None)
        if rule is None:
            raise LookupError(name)
        return _target(rule, rt)
    weighted = [(int(r.get("weight") or 0), _target(r, rt)) for r in rules(app)]
    weighted = [(w, rev) for w, rev in weighted if w > 0 and rev is not None]
    if not weighted:
        return None
    return _pick.choices([rev for _, rev in weighted], weights=[w for w, _ in weighted])[0]


def weight_of(app: Resource, rt: AppRuntime, rev: Revision) -> int:
    """The share of the app's traffic the rules give ``rev``, in percent."""
    return sum(int(r.get("weight") or 0) for r in rules(app) if _target(r, rt) is rev)
