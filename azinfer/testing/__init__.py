"""Test your own plans: builders of projects and inventories, one-line assertions, a pytest plugin.

A platform team (or a tool embedding azinfer) tests what its projects would
deploy without Azure: build the resource group as fine-tuning leaves it,
plan, and assert in one line::

    from azinfer import ResourceKind, plan_project
    from azinfer.testing import assert_plan, finetuning_inventory, write_project

    def test_we_only_ever_create_the_app(tmp_path):
        project = write_project(tmp_path, parameters={"acaAppName": "team-a-phi3"})
        plan = plan_project(project, inventory=finetuning_inventory())
        assert_plan(plan, creates={ResourceKind.CONTAINER_APP}, blocked_by=())

- :func:`finetuning_inventory`: a resource group as the AI Toolkit's
  fine-tuning run leaves it (names from the same rule), with overrides per
  resource.
- :func:`write_project`, :func:`copy_project`: an AI Toolkit project from
  values or from a folder, the files where the toolkit keeps them.
- :func:`assert_plan`: what a plan creates, reuses, updates, what blocks it,
  what it warns about; a failure shows the plan.
- :mod:`azinfer.testing.plugin`: the pytest fixtures ``azinfer_project`` and
  ``finetuning_inventory``, registered when azinfer is installed.

Importing this package does not import pytest (only the plugin does), and
``import azinfer`` does not import this package.
"""

from __future__ import annotations

from azinfer.testing.assertions import assert_plan
from azinfer.testing.inventories import (
    EXAMPLE_LOCATION,
    EXAMPLE_RESOURCE_GROUP,
    EXAMPLE_SUBSCRIPTION,
    FINETUNING_WORKLOAD_PROFILES,
    finetuning_inventory,
)
from azinfer.testing.projects import (
    SHIPPED_FINETUNING_CONFIG,
    SHIPPED_INFERENCE_CONFIG,
    ProjectFactory,
    ProjectFile,
    copy_project,
    write_project,
)

__all__ = [
    "assert_plan",
    "finetuning_inventory",
    "write_project",
    "copy_project",
    "ProjectFile",
    "ProjectFactory",
    "EXAMPLE_SUBSCRIPTION",
    "EXAMPLE_RESOURCE_GROUP",
    "EXAMPLE_LOCATION",
    "FINETUNING_WORKLOAD_PROFILES",
    "SHIPPED_INFERENCE_CONFIG",
    "SHIPPED_FINETUNING_CONFIG",
]
