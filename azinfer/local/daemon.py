"""The process behind ``azinfer up --local``: the ARM emulator, running containers, until SIGTERM.

``python -m azinfer.local.daemon STATE_DIR`` (started detached by
:func:`azinfer.local.endpoint.start`) reads ``spec.json`` there, seeds the
fine-tuning resource group and share as the project's fine-tuning files name
them, with the model folder the spec names, and runs each container app's
container as a local process (this Python standing for the image, serving on
the CPU). Once it serves, it writes ``endpoint.json`` (0600: the emulator's
service principal secret is in it) and ``ca.pem``; on SIGTERM or SIGINT it
stops the containers and the listeners and removes ``endpoint.json``.
Its log lines say what it does, never a secret.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from azinfer._files import write_atomic
from azinfer.local.workspace import Workspace
from azinfer.resources import ResourceKind

__all__ = ["DaemonSpec", "main"]

log = logging.getLogger(__name__)

OPERATION_EXPIRY = 600.0
"""Seconds an ARM deployment waits for a container to start (the model loads on the CPU)."""


@dataclass(frozen=True)
class DaemonSpec:
    """What the daemon seeds (``spec.json``; no secret)."""

    subscription_id: str
    resource_group: str
    location: str
    names: dict[str, str] = field(default_factory=dict)
    """Fine-tuning resource names by :class:`~azinfer.resources.ResourceKind` value."""
    job: str | None = None
    share_from: str | None = None
    """A folder in the toolkit's share layout: its ``model-cache/`` and ``models/`` go on the share."""
    model_label: str = ""
    stand_in: bool = False
    other_groups: list[str] = field(default_factory=list)
    """Empty resource groups beside it (``--resource-group``: a target other than the fine-tuning group)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DaemonSpec:
        return cls(**data)


def main(argv: list[str] | None = None) -> int:
    from azinfer.local.emulator import ArmEmulator, ReplicaStart
    from azinfer.local.emulator.fixtures import seed_finetuning_group, seed_finetuning_share, seed_share_from

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m azinfer.local.daemon STATE_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    workspace = Workspace(source=Path(), root=Path(args[0]))  # the daemon needs only its state folder
    spec = DaemonSpec.from_json(json.loads(workspace.spec.read_text()))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # Retry-After 0: the SDKs then poll at the client's own (short) interval.
    emu = ArmEmulator(subscription_id=spec.subscription_id, retry_after=0)
    emu.identity.client_secret = secrets.token_urlsafe(32)  # the class's default is in azinfer's own source
    shutil.rmtree(workspace.shares, ignore_errors=True)  # a share starts as its seed says, as the emulator's state
    emu.serve()
    try:
        emu.apps.default_start = ReplicaStart(ready_after=0.0)
        containers = emu.apps.containers
        containers.root, containers.python = workspace.shares, sys.executable
        containers.operation_expiry = OPERATION_EXPIRY
        containers.extra_env = {"PIP_NO_INDEX": "1"}  # the start installs from the share only
        containers.enabled = True
        fg = seed_finetuning_group(emu, spec.subscription_id, spec.resource_group, spec.location,
                                   names={ResourceKind(k): v for k, v in spec.names.items()}, job=spec.job)
        seed_finetuning_share(emu, fg)
        for group in spec.other_groups:
            emu.add_resource_group(fg.subscription_id, group, fg.location)
        if spec.share_from is not None:
            seed_share_from(emu, fg, Path(spec.share_from))
        write_atomic(workspace.ca, Path(emu.ca_path).read_text())
        identity = emu.identity
        endpoint = {"pid": os.getpid(), "url": emu.url, "ca": str(workspace.ca), "tenant_id": identity.tenant_id,
                    "client_id": identity.client_id, "client_secret": identity.client_secret,
                    "subscription_id": fg.subscription_id, "resource_group": fg.resource_group,
                    "model": spec.model_label, "stand_in": spec.stand_in}
        write_atomic(workspace.endpoint_file, json.dumps(endpoint, indent=2) + "\n")  # 0600, as mkstemp makes it
        log.info("ARM emulator at %s; resource group %s (storage %s/%s, environment %s); model: %s", emu.url,
                 fg.resource_group, fg.storage_account, fg.file_share, fg.environment, spec.model_label)
        while not stop.wait(0.5):  # a plain wait() may not wake for a signal on every platform
            pass
        log.info("stopping: containers, then listeners")
    finally:
        workspace.endpoint_file.unlink(missing_ok=True)
        emu.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
