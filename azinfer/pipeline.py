"""The pipeline in one call: project files -> resolved inputs -> plan.

``plan_project`` is what ``azinfer plan`` runs; each stage is also available
on its own (:func:`~azinfer.project.load_project`, :func:`~azinfer.inputs.resolve`,
:func:`~azinfer.plan.make_plan`, :func:`~azinfer.templates.render`).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import replace

from azinfer._arguments import check_members, check_optional_text, check_path, check_type
from azinfer.basemodel import read_base_model
from azinfer.inputs import resolve
from azinfer.inventory import InMemoryInventory, Inventory
from azinfer.plan import Plan, make_plan
from azinfer.plan.cost import PriceTable
from azinfer.project import load_project
from azinfer.resources import ResourceKind

__all__ = ["plan_project"]


def plan_project(
    project_dir: str | os.PathLike[str] = ".",
    *,
    inventory: Inventory | None = None,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    location: str | None = None,
    update: Collection[ResourceKind] = (),
    model: str | None = None,
    prices: PriceTable | None = None,
    busy_hours: float | None = None,
) -> Plan:
    """Load the project, resolve its inputs and plan against ``inventory``.

    :param inventory: what exists; ``None`` plans offline (nothing exists yet).
    :param model: the base model (a folder or a Hugging Face name) instead of the one
        ``finetuning/olive-config.json`` names, for the fit estimate.
    :param prices: the price table for the cost estimate (default: the one shipped; :func:`azinfer.plan.cost.load_prices`).
    :param busy_hours: hours a month at maxReplicas for the monthly cost (default 176).
    :raises ProjectFileError: when a project file is invalid.
    :raises ResolutionError: when no subscription or resource group can be found.
    :raises NamingError: when a name breaks Azure's naming rules.
    :raises ArgumentError: when an argument has the wrong type or value.
    """
    project = load_project(check_path("plan_project", "project_dir", project_dir))
    if inventory is not None:
        check_type("plan_project", "inventory", inventory, Inventory, "an Inventory (e.g. InMemoryInventory) or None")
    update = check_members("plan_project", "update", update, ResourceKind)
    subscription_id = check_optional_text("plan_project", "subscription_id", subscription_id)
    resource_group = check_optional_text("plan_project", "resource_group", resource_group)
    location = check_optional_text("plan_project", "location", location)
    model = check_optional_text("plan_project", "model", model)
    if model is not None:
        project = replace(project, base_model=read_base_model(project.root, model))
    inv = inventory if inventory is not None else InMemoryInventory(offline=True)
    inputs = resolve(project, inv, subscription_id=subscription_id, resource_group=resource_group, location=location)
    return make_plan(inputs, inv, update=update, prices=prices, busy_hours=busy_hours)
