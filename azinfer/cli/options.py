"""Options several commands share: the project and its target, where Azure is, and the project built from them."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from azinfer.resources import ResourceKind

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.azure import AzureProject

__all__ = ["add_project_options", "add_azure_options", "azure_project"]


def add_project_options(parser: argparse.ArgumentParser, *, update: bool = True, location: bool = True) -> None:
    """``PROJECT_DIR`` and the overrides of the resolved target (subscription, group[, region, updates])."""
    parser.add_argument("project_dir", nargs="?", default=".", metavar="PROJECT_DIR",
                        help="the AI Toolkit project (default: the current folder)")
    parser.add_argument("--subscription", help="subscription id (default: the fine-tuning one)")
    parser.add_argument("--resource-group", help="resource group (default: the fine-tuning one)")
    if location:
        parser.add_argument("--location", help="Azure region (default: from the parameters or the resource group)")
    if update:
        kinds = [k.value for k in ResourceKind if k is not ResourceKind.CONTAINER_APP]
        parser.add_argument("--update", action="append", default=[], metavar="RESOURCE", choices=kinds,
                            help="also apply the template to this existing resource (repeatable; one of: "
                                 f"{', '.join(kinds)})")


def add_azure_options(parser: argparse.ArgumentParser) -> None:
    """Cloud and endpoint options shared by every command that talks to Azure."""
    parser.add_argument("--cloud", choices=["public", "china", "usgovernment"], default="public",
                        help="Azure cloud (default: public)")
    parser.add_argument("--arm-endpoint", metavar="URL", help="a custom Azure Resource Manager endpoint")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also show the Azure SDK's log on stderr (sign-in attempts, requests, retries)")


def azure_project(args: argparse.Namespace) -> AzureProject:
    """The :class:`~azinfer.azure.AzureProject` the options name (the default credential of the cloud)."""
    from azinfer.azure import AzureProject

    return AzureProject(
        args.project_dir,
        cloud=args.cloud,
        arm_endpoint=args.arm_endpoint,
        authority_host=os.environ.get("AZURE_AUTHORITY_HOST"),
        subscription_id=args.subscription,
        resource_group=args.resource_group,
        location=getattr(args, "location", None),
        update=[ResourceKind(u) for u in getattr(args, "update", [])],
    )
