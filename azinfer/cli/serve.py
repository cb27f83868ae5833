"""``azinfer serve``: the server's options, each with an ``AZINFER_*`` environment variable.

A thin layer over :mod:`azinfer.serve`: nothing heavy is imported here;
torch, transformers, starlette and uvicorn load only once :func:`run`
starts the server. ``python -m azinfer.serve`` uses the same parser.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

from azinfer.errors import ServeError
from azinfer.serve.settings import DEFAULT_PROMPT_TEMPLATE, ENGINE_CHOICES, ServeSettings

T = TypeVar("T")

__all__ = ["add_arguments", "run", "settings_from_args", "register"]

_TRUE = {"1", "true", "yes", "on"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ServeError(f"{name}={value!r} is not a whole number") from None


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise ServeError(f"{name}={value!r} is not a number") from None


def _default(field: str) -> Any:
    return ServeSettings.__dataclass_fields__[field].default


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to *parser*; defaults come from the environment when :func:`run` reads them."""
    parser.add_argument("--model-dir", type=Path, help="base model folder (env AZINFER_MODEL_DIR; default: found under the mount)")
    parser.add_argument("--adapter-dir", type=Path, help="LoRA adapter folder (env AZINFER_ADAPTER_DIR; default: the newest under <mount>/models)")
    parser.add_argument("--base-only", action="store_true", default=None, help="serve the base model without an adapter (env AZINFER_BASE_ONLY)")
    parser.add_argument("--mount", type=Path, help="where the AI Toolkit share is mounted (env AZINFER_MOUNT, default /mount)")
    parser.add_argument("--host", help="address to listen on (env AZINFER_HOST; default 0.0.0.0 with an API key, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env AZINFER_PORT, default 7860)")
    parser.add_argument("--no-merge", action="store_true", default=None, help="keep the adapter unmerged (env AZINFER_NO_MERGE)")
    parser.add_argument("--load-in-4bit", action="store_true", default=None, help="4-bit weights with bitsandbytes, CUDA only (env AZINFER_LOAD_IN_4BIT)")
    parser.add_argument("--insecure-no-auth", action="store_true", default=None, help="allow a non-loopback host without AZINFER_API_KEY (env AZINFER_INSECURE_NO_AUTH)")
    parser.add_argument("--model-name", help="model id the API serves (env AZINFER_MODEL_NAME; default <org>/<name> of the base model)")
    parser.add_argument("--engine", choices=ENGINE_CHOICES, help="auto (default: vllm with a CUDA GPU and vLLM installed, else batched), batched, vllm, or the AI Toolkit's thread-per-request baseline (env AZINFER_ENGINE)")
    parser.add_argument("--max-batch-size", type=int, help="requests generated together (env AZINFER_MAX_BATCH_SIZE, default 16)")
    parser.add_argument("--max-queue", type=int, help="requests waiting beyond the batch before 429 (env AZINFER_MAX_QUEUE, default 64)")
    parser.add_argument("--prompt-template", help="template with one '{}' for a tokenizer without a chat template (env AZINFER_PROMPT_TEMPLATE)")
    parser.add_argument("--max-body-bytes", type=int, help="largest request body, else 413 (env AZINFER_MAX_BODY_BYTES, default 4 MiB)")
    parser.add_argument("--body-timeout", type=float, help="seconds for a request body to arrive, else 408 (env AZINFER_BODY_TIMEOUT, default 60)")
    parser.add_argument("--header-timeout", type=float, help="seconds for a request's headers to arrive, else the connection is closed (env AZINFER_HEADER_TIMEOUT, default 10)")
    parser.add_argument("--max-connections", type=int, help="open connections; more are closed at once (env AZINFER_MAX_CONNECTIONS, default 512)")


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Merge options over ``AZINFER_*`` environment variables over defaults; the API key comes only from the environment.

    :raises ServeError: a value is invalid.
    """
    def pick(option: Any, env: T) -> T:
        """The command line's value, else the environment's (argparse gives ``None`` for an option not given)."""
        value: T = option if option is not None else env
        return value

    return ServeSettings(
        mount_root=pick(args.mount, _env_path("AZINFER_MOUNT")) or Path("/mount"),
        model_dir=pick(args.model_dir, _env_path("AZINFER_MODEL_DIR")),
        adapter_dir=pick(args.adapter_dir, _env_path("AZINFER_ADAPTER_DIR")),
        base_only=bool(pick(args.base_only, _env_flag("AZINFER_BASE_ONLY"))),
        merge=not pick(args.no_merge, _env_flag("AZINFER_NO_MERGE")),
        load_in_4bit=bool(pick(args.load_in_4bit, _env_flag("AZINFER_LOAD_IN_4BIT"))),
        host=pick(args.host, os.environ.get("AZINFER_HOST") or None),
        port=pick(args.port, _env_int("AZINFER_PORT", _default("port"))),
        api_key=os.environ.get("AZINFER_API_KEY") or None,
        insecure_no_auth=bool(pick(args.insecure_no_auth, _env_flag("AZINFER_INSECURE_NO_AUTH"))),
        model_name=pick(args.model_name, os.environ.get("AZINFER_MODEL_NAME") or None),
        engine=pick(args.engine, os.environ.get("AZINFER_ENGINE") or "auto"),
        max_batch_size=pick(args.max_batch_size, _env_int("AZINFER_MAX_BATCH_SIZE", _default("max_batch_size"))),
        max_queue=pick(args.max_queue, _env_int("AZINFER_MAX_QUEUE", _default("max_queue"))),
        prompt_template=pick(args.prompt_template, os.environ.get("AZINFER_PROMPT_TEMPLATE") or DEFAULT_PROMPT_TEMPLATE),
        max_body_bytes=pick(args.max_body_bytes, _env_int("AZINFER_MAX_BODY_BYTES", _default("max_body_bytes"))),
        body_timeout=pick(args.body_timeout, _env_float("AZINFER_BODY_TIMEOUT", _default("body_timeout"))),
        header_timeout=pick(args.header_timeout, _env_float("AZINFER_HEADER_TIMEOUT", _default("header_timeout"))),
        max_connections=pick(args.max_connections, _env_int("AZINFER_MAX_CONNECTIONS", _default("max_connections"))),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; a :class:`ServeError` is reported on stderr without a traceback.

    :returns: 0 after a clean shutdown, 1 when the server cannot start.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The adapter's config names a hub id; nothing may try to fetch it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        settings = settings_from_args(args)
        from azinfer.serve.server import serve

        serve(settings)
    except ServeError as error:
        print(f"azinfer serve: error: {error}", file=sys.stderr)
        return 1
    return 0


def register(commands: Any) -> None:
    """Add ``serve`` to the CLI's subcommands."""
    serve = commands.add_parser("serve", help="run the inference server (needs azinfer[serve])")
    add_arguments(serve)
    serve.set_defaults(handler=run)
