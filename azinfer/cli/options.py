"""Options several commands share: the project and its target, where Azure is, and the project built from them.

Where Azure is comes from the options, else from the variables the Azure SDKs
read: ``AZURE_RESOURCE_MANAGER_ENDPOINT`` (ARM), ``AZURE_AUTHORITY_HOST``
(azure-identity's sign-in authority), ``AZURE_SDK_CLOUD_CONF`` (azure-core's cloud
name: ``AZURE_PUBLIC_CLOUD``, ``AZURE_CHINA_CLOUD``, ``AZURE_US_GOVERNMENT``), and
``AZURE_SUBSCRIPTION_ID`` when neither ``--subscription`` nor the project names one.
``python -m azinfer.local.emulator`` prints them for the ARM emulator.

``--local`` instead targets the project's local endpoint (``azinfer up DIR
--local``: the daemon of :mod:`azinfer.local.endpoint`), read from its state file.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from azinfer.errors import AzinferError
from azinfer.resources import ResourceKind

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.azure import AzureProject

__all__ = ["add_project_options", "add_azure_options", "azure_project", "check_local_options", "command_target",
           "say_local"]


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
    parser.add_argument("--cloud", choices=["public", "china", "usgovernment"],
                        help="Azure cloud (default: $AZURE_SDK_CLOUD_CONF's, else public)")
    parser.add_argument("--arm-endpoint", metavar="URL",
                        help="a custom Azure Resource Manager endpoint (default: $AZURE_RESOURCE_MANAGER_ENDPOINT)")
    parser.add_argument("--local", action="store_true",
                        help="this machine's endpoint that 'azinfer up DIR --local' started (the ARM emulator "
                             "azinfer runs, the container as a local process), not Azure")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also show the Azure SDK's log on stderr (sign-in attempts, requests, retries)")


# azure-core's cloud names (AZURE_SDK_CLOUD_CONF) and the --cloud each is.
_SDK_CLOUDS = {"AZURE_PUBLIC_CLOUD": "public", "AZURE_CHINA_CLOUD": "china", "AZURE_US_GOVERNMENT": "usgovernment"}


def _environment(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _https(name: str, value: str | None) -> str | None:
    """An endpoint from the environment: an ``https://`` URL (tokens never travel over plain HTTP), or ``None``."""
    if value is not None and not value.lower().startswith("https://"):
        raise AzinferError(f"the environment variable {name}={value!r}: expected an https:// URL")
    return value


def _cloud(args: argparse.Namespace) -> str:
    if args.cloud:
        return str(args.cloud)
    named = _environment("AZURE_SDK_CLOUD_CONF")
    if named is None:
        return "public"
    if named.upper() not in _SDK_CLOUDS:
        raise AzinferError(f"the environment variable AZURE_SDK_CLOUD_CONF={named!r}: expected one of "
                           f"{', '.join(_SDK_CLOUDS)}")
    return _SDK_CLOUDS[named.upper()]


def azure_project(args: argparse.Namespace) -> AzureProject:
    """The :class:`~azinfer.azure.AzureProject` the options (else the Azure SDKs' environment variables) name,
    with the default credential of the cloud.

    :raises AzinferError: when a variable holds what it cannot (the message names it).
    """
    from azinfer.azure import AzureProject
    from azinfer.cli.example import working_folder
    from azinfer.inputs import with_fallbacks

    update = [ResourceKind(u) for u in getattr(args, "update", [])]
    check_local_options(args)
    if args.local:
        from azinfer.local.endpoint import require

        endpoint = require(args.project_dir, say=say_local)
        return endpoint.project(subscription_id=args.subscription, resource_group=args.resource_group,
                                location=getattr(args, "location", None), update=update)
    folder = working_folder(args.project_dir)

    def build(options: dict[str, str | None]) -> AzureProject:
        return AzureProject(
            folder,
            cloud=_cloud(args),
            arm_endpoint=args.arm_endpoint or _https("AZURE_RESOURCE_MANAGER_ENDPOINT",
                                                     _environment("AZURE_RESOURCE_MANAGER_ENDPOINT")),
            authority_host=_https("AZURE_AUTHORITY_HOST", _environment("AZURE_AUTHORITY_HOST")),
            subscription_id=options["subscription_id"],
            resource_group=options["resource_group"],
            location=getattr(args, "location", None),
            update=update,
        )

    # AZURE_SUBSCRIPTION_ID only where nothing else names one: the project's own subscription wins.
    fallback = _environment("AZURE_SUBSCRIPTION_ID")
    return with_fallbacks(build, {"subscription_id": args.subscription, "resource_group": args.resource_group},
                          {"subscription_id": fallback} if fallback else {})


def say_local(line: str) -> None:
    """What the local endpoint's helpers say (a daemon started, resumed, found stale), on stderr."""
    print(f"azinfer: {line}", file=sys.stderr, flush=True)


def check_local_options(args: argparse.Namespace) -> None:
    """``--local`` goes without ``--cloud`` and ``--arm-endpoint``; ``--share-from`` only with it.

    :raises AzinferError: naming the options that do not go together.
    """
    if args.local and (args.cloud or args.arm_endpoint):
        raise AzinferError("--local targets this machine's endpoint: leave out --cloud and --arm-endpoint")
    if getattr(args, "share_from", None) and not args.local:
        raise AzinferError("--share-from goes with --local (on Azure the model is on the fine-tuning share)")


def command_target(args: argparse.Namespace) -> str:
    """The project folder and the options that pick its target, as a shell takes them again (for next steps)."""
    import shlex

    words = [args.project_dir]
    for option, value in (("--subscription", args.subscription), ("--resource-group", args.resource_group)):
        if value:
            words += [option, value]
    return shlex.join(words + (["--local"] if getattr(args, "local", False) else []))
