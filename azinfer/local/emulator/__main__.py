"""Run the emulator on its own: ``python -m azinfer.local.emulator [--port N] [--resource-group RG] ...``.

It seeds a resource group as a finished AI Toolkit remote fine-tuning leaves
it (resources and share files), prints the environment variables a shell
needs to reach it (``export NAME='value'`` lines on stdout, as ``emu.env()``;
``--env-file`` writes them to a file too), and runs until Ctrl-C or SIGTERM,
then stops cleanly (exit 0).  A process using that environment must build its
credential with ``disable_instance_discovery=True`` (see docs/emulator.md).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .containerapps import ReplicaStart
from .fixtures import seed_finetuning_group, seed_finetuning_share, seed_share_from
from .server import DEFAULT_SUBSCRIPTION, ArmEmulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m azinfer.local.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="the ARM listener's port (default: any free one)")
    parser.add_argument("--subscription", default=DEFAULT_SUBSCRIPTION,
                        help="the subscription of the group (e.g. the one a project's fine-tuning config names)")
    parser.add_argument("--resource-group", default="rg-finetune", help="the fine-tuning group to seed")
    parser.add_argument("--location", default="eastus")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--retry-after", type=int, default=1,
                        help="the Retry-After of long-running operations (the SDKs wait 30 s when it is 0)")
    parser.add_argument("--ready-after", type=float, default=0.0,
                        help="seconds a container app replica takes to get ready")
    parser.add_argument("--env-file", help="also write the export lines to this file (atomically)")
    parser.add_argument("--run-containers", action="store_true",
                        help="run each replica's container as a local process (this Python stands for the image)")
    parser.add_argument("--operation-expiry", type=float, default=900.0,
                        help="with --run-containers: seconds a deployment waits for a revision to start")
    parser.add_argument("--share-from", metavar="DIR", type=Path,
                        help="seed the fine-tuning share's model-cache/ and models/ from this folder")
    return parser


def _write_atomically(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".emulator-env-")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emu = ArmEmulator(latency=args.latency, port=args.port, subscription_id=args.subscription,
                      retry_after=args.retry_after)
    emu.serve()
    try:
        emu.apps.default_start = ReplicaStart(ready_after=args.ready_after)
        fg = seed_finetuning_group(emu, resource_group=args.resource_group, location=args.location)
        seed_finetuning_share(emu, fg)
        if args.share_from is not None:
            try:
                seed_share_from(emu, fg, args.share_from)
            except ValueError as error:
                print(f"python -m azinfer.local.emulator: error: --share-from: {error}", file=sys.stderr)
                return 2
        emu.apps.containers.enabled = args.run_containers
        emu.apps.containers.operation_expiry = args.operation_expiry
        exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in emu.env().items())
        if args.env_file:
            _write_atomically(args.env_file, exports)
        sys.stdout.write(exports)
        sys.stdout.flush()
        print(f"ARM emulator at {emu.url} (files {emu.file_url}, log stream {emu.logstream_url}); "
              f"subscription {fg.subscription_id}, resource group {fg.resource_group}: storage "
              f"{fg.storage_account}/{fg.file_share}, environment {fg.environment}. Ctrl-C stops it.",
              file=sys.stderr, flush=True)
        while not stop.wait(0.5):  # a plain wait() may not wake for a signal on every platform
            pass
    finally:
        emu.stop()
        if args.env_file and os.path.exists(args.env_file):
            os.remove(args.env_file)
    print("ARM emulator stopped.", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
