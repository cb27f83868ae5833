"""The server's settings, declared once: each field of :class:`ServeSettings` carries its option.

A field's :class:`Option` (in the field's metadata) names its command-line
flag, its ``AZINFER_*`` environment variable and its help. From that one
declaration come the CLI's options (:mod:`azinfer.cli.serve`), the reading
of the environment (:func:`settings_from`), the table in ``docs/serve.md``
(:func:`markdown_table`, checked by a test) and the variables the
deployment template sets (:func:`env_var`).
"""

from __future__ import annotations

import argparse
import os
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from azinfer.errors import ServeError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_PROMPT_TEMPLATE",
    "ENGINE_CHOICES",
    "HTTP_CHOICES",
    "LOOPBACK_HOSTS",
    "Option",
    "ServeSettings",
    "add_arguments",
    "check_adapter_name",
    "env_var",
    "markdown_table",
    "named_adapters",
    "options",
    "settings_from",
]

# The AI Toolkit's Phi-3 template; used only for a tokenizer without a chat template.
DEFAULT_PROMPT_TEMPLATE = "<|user|>\n{}<|end|>\n<|assistant|>\n"
# Requests the batched and baseline engines run together unless --max-batch-size says otherwise.
DEFAULT_BATCH_SIZE = 16
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# ``auto``: vLLM when a CUDA GPU and vLLM are present, else ``batched`` (azinfer.serve.server.choose_engine).
ENGINE_CHOICES = ("auto", "batched", "vllm", "baseline")
# uvicorn's HTTP parsers; ``auto`` is httptools when installed (vLLM's image has it), else h11.
HTTP_CHOICES = ("auto", "h11", "httptools")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Option:
    """How one setting is given: a flag (``None``: environment only, for a secret), its help, and its default as the docs say it.

    ``inverted`` is for a switch whose flag turns the setting off (``--no-merge`` sets ``merge`` false).
    The environment variable is ``AZINFER_`` and the flag's name (the field's for a secret).
    A ``repeated`` flag may be given several times; its variable holds the values separated by commas.
    """

    flag: str | None
    help: str
    shown_default: str
    inverted: bool = False
    choices: tuple[str, ...] | None = None
    repeated: bool = False


def _opt(default: Any, flag: str | None, help: str, shown_default: str, **more: Any) -> Any:
    return field(default=default, metadata={"option": Option(flag, help, shown_default, **more)})


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``azinfer serve`` needs; paths left ``None`` are found under ``mount_root``.

    ``api_key`` is a secret: it is never logged nor shown in an error.
    """

    mount_root: Path = _opt(Path("/mount"), "--mount", "where the AI Toolkit share is mounted", "`/mount`")
    model_dir: Path | None = _opt(None, "--model-dir", "base model folder", "found under the mount")
    adapter_dir: Path | None = _opt(None, "--adapter-dir", "LoRA adapter folder", "the newest under `<mount>/models`")
    adapters: tuple[str, ...] = _opt((), "--adapter", "a named adapter `NAME=DIR`, served as model `NAME` (repeatable)",
                                     "none, and those under `<mount>/models/azinfer`", repeated=True)
    adapter_poll: float = _opt(0.0, "--adapter-poll", "seconds between looks at `<mount>/models/azinfer` for adapters "
                               "added or removed; 0: only at start", "0")
    max_loras: int = _opt(4, "--max-loras", "adapters one batch may mix (vLLM's `max_loras`)", "4")
    max_lora_rank: int = _opt(64, "--max-lora-rank", "largest LoRA rank loadable at run time (vLLM's `max_lora_rank`)",
                              "64")
    base_only: bool = _opt(False, "--base-only", "serve the base model without an adapter", "off")
    merge: bool = _opt(True, "--no-merge", "keep the adapter unmerged", "adapter merged", inverted=True)
    engine_metrics: bool = _opt(True, "--no-engine-metrics",
                                "leave out vLLM's own statistics (`vllm:*` in /metrics), about 5% of a CPU stream's time",
                                "on", inverted=True)
    load_in_4bit: bool = _opt(False, "--load-in-4bit", "4-bit weights with bitsandbytes, CUDA only", "off")
    host: str | None = _opt(None, "--host", "address to listen on", "`0.0.0.0` with a key, `127.0.0.1` without")
    port: int = _opt(7860, "--port", "port", "7860")
    api_key: str | None = _opt(None, None, "the API key clients send as `Authorization: Bearer`; a secret, so no option",
                               "unset")
    insecure_no_auth: bool = _opt(False, "--insecure-no-auth", "allow a non-loopback host without AZINFER_API_KEY", "off")
    model_name: str | None = _opt(None, "--model-name", "model id the API serves", "`<org>/<name>` of the base model")
    engine: str = _opt("auto", "--engine", "`batched`, `vllm`, or `baseline` (the AI Toolkit's thread per request, "
                       "for benchmarks)", "`auto`: `vllm` with a CUDA GPU and vLLM installed, else `batched`",
                       choices=ENGINE_CHOICES)
    max_batch_size: int | None = _opt(None, "--max-batch-size", "requests generated together (vLLM's `max_num_seqs`)",
                                      f"{DEFAULT_BATCH_SIZE}; with `vllm`, vLLM's own (128 on a CPU, 256 to 1024 "
                                      "on a GPU) within what its KV cache holds")
    max_queue: int = _opt(64, "--max-queue", "requests waiting beyond the batch before 429", "64")
    default_max_tokens: int = _opt(256, "--default-max-tokens", "new tokens of a request that names no max_tokens", "256")
    prompt_template: str = _opt(DEFAULT_PROMPT_TEMPLATE, "--prompt-template",
                                "template with one `{}` for a tokenizer without a chat template", "Phi-3's")
    # Limits on one client (docs/serve.md, "Limits on one client", explains each default).
    max_body_bytes: int = _opt(4 * 2**20, "--max-body-bytes", "largest request body, else 413", "4194304 (4 MiB)")
    body_timeout: float = _opt(60.0, "--body-timeout", "seconds for a request body to arrive, else 408", "60")
    header_timeout: float = _opt(10.0, "--header-timeout",
                                 "seconds for a request's head to arrive, else the connection is closed", "10")
    max_header_bytes: int = _opt(32 * 2**10, "--max-header-bytes",
                                 "largest request head (line and headers), else 431 and close", "32768 (32 KiB)")
    max_headers: int = _opt(100, "--max-headers", "most header lines in a request, else 431 and close", "100")
    max_request_line: int = _opt(8192, "--max-request-line", "longest request target (path and query), else 414",
                                 "8192")
    http: str = _opt("auto", "--http", "uvicorn's HTTP parser; both get the same limits",
                     "`auto`: `httptools` when installed, else `h11`", choices=HTTP_CHOICES)
    max_connections: int = _opt(512, "--max-connections",
                                "open connections; past it the oldest idle one is closed, else the new one", "512")

    def __post_init__(self) -> None:
        """Check values that no later step can recover from.

        :raises ServeError: a value is out of range or the options contradict each other.
        """
        if not 0 < self.port < 65536:
            raise ServeError(f"port {self.port} is not between 1 and 65535")
        if (self.max_batch_size is not None and self.max_batch_size < 1) or self.max_queue < 0 or self.default_max_tokens < 1:
            raise ServeError("max batch size and default max tokens must be at least 1, max queue at least 0")
        if self.max_body_bytes < 1024 or self.max_connections < 1:
            raise ServeError("max body bytes must be at least 1024, max connections at least 1")
        if self.max_header_bytes < 1024 or self.max_headers < 1 or not 64 <= self.max_request_line <= self.max_header_bytes:
            raise ServeError("max header bytes must be at least 1024, max headers at least 1, "
                             "and max request line between 64 and max header bytes")
        if not (self.body_timeout > 0 and self.header_timeout > 0):
            raise ServeError("the body and header timeouts must be more than 0 seconds")
        if self.prompt_template.count("{}") != 1:
            raise ServeError("the prompt template must contain exactly one '{}' placeholder")
        if self.engine not in ENGINE_CHOICES:
            raise ServeError(f"unknown engine {self.engine!r}: expected one of {', '.join(ENGINE_CHOICES)}")
        if self.http not in HTTP_CHOICES:
            raise ServeError(f"unknown HTTP parser {self.http!r}: expected one of {', '.join(HTTP_CHOICES)}")
        if self.adapter_poll < 0 or self.max_loras < 1 or self.max_lora_rank < 1:
            raise ServeError("adapter poll must be at least 0 seconds, max loras and max lora rank at least 1")
        named_adapters(self.adapters)  # checks each NAME=DIR
        if self.base_only and self.adapter_dir is not None:
            raise ServeError("--base-only and --adapter-dir contradict each other")
        if self.api_key is not None and not self.api_key.strip():
            raise ServeError("the API key is empty")

    @property
    def batch_size(self) -> int:
        """``max_batch_size``, or :data:`DEFAULT_BATCH_SIZE` when not given (the engines but vLLM's)."""
        return DEFAULT_BATCH_SIZE if self.max_batch_size is None else self.max_batch_size

    @property
    def bind_host(self) -> str:
        """The address to listen on: all interfaces with a key, loopback without one.

        :raises ServeError: a non-loopback host without a key and without ``insecure_no_auth``.
        """
        if self.host is None:
            return "0.0.0.0" if self.api_key or self.insecure_no_auth else "127.0.0.1"
        if self.host not in LOOPBACK_HOSTS and not self.api_key and not self.insecure_no_auth:
            raise ServeError(
                f"refusing to listen on {self.host} without an API key: set AZINFER_API_KEY, "
                "or pass --insecure-no-auth to serve without authentication"
            )
        return self.host


@dataclass(frozen=True)
class _Setting:
    """One field of :class:`ServeSettings` with its option and the type its text is read as."""

    name: str
    kind: type
    option: Option

    @property
    def env(self) -> str:
        return "AZINFER_" + (self.option.flag or self.name).removeprefix("--").replace("-", "_").upper()

    @property
    def dest(self) -> str:
        return (self.option.flag or self.name).removeprefix("--").replace("-", "_")

    def parse(self, text: str | list[str], source: str) -> Any:
        """The value of *text* from *source* (a flag or a variable), the inversion of a switch applied.

        A repeated flag's values come as a list; its variable's as one text separated by commas.

        :raises ServeError: *text* is not of the setting's type.
        """
        if self.option.repeated:
            return tuple(part.strip() for item in ([text] if isinstance(text, str) else text)
                         for part in item.split(",") if part.strip())
        assert isinstance(text, str)
        if self.kind is bool:
            return (text.strip().lower() in _TRUE) != self.option.inverted
        try:
            return self.kind(text)
        except ValueError:
            what = {int: "a whole number", float: "a number"}.get(self.kind, "valid")
            raise ServeError(f"{source}={text!r} is not {what}") from None


def _settings() -> Iterator[_Setting]:
    hints = typing.get_type_hints(ServeSettings)
    for item in fields(ServeSettings):
        kinds = [k for k in typing.get_args(hints[item.name]) or (hints[item.name],) if k is not type(None)]
        yield _Setting(item.name, kinds[0], item.metadata["option"])


def options() -> tuple[_Setting, ...]:
    """Every setting with its option, in declaration order."""
    return tuple(_settings())


def env_var(name: str) -> str:
    """The environment variable of the setting *name* (``port`` -> ``AZINFER_PORT``), for the deployment template."""
    return next(s.env for s in _settings() if s.name == name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add a flag per setting to *parser*; an absent flag is ``None``, so :func:`settings_from` reads the environment."""
    for setting in _settings():
        option = setting.option
        if option.flag is None:
            continue
        text = f"{option.help} (env {setting.env}; default {option.shown_default})".replace('`', '')
        text = text.replace("%", "%%")
        if setting.kind is bool:
            parser.add_argument(option.flag, dest=setting.dest, action="store_true", default=None, help=text)
        elif option.repeated:
            parser.add_argument(option.flag, dest=setting.dest, action="append", metavar="NAME=DIR", help=text)
        else:
            parser.add_argument(option.flag, dest=setting.dest, type=str, choices=option.choices, help=text)


def settings_from(args: argparse.Namespace | None, environ: Mapping[str, str] = os.environ) -> ServeSettings:
    """Each setting from its flag, else its environment variable, else its default (an empty variable is unset).

    :raises ServeError: a value is invalid.
    """
    values: dict[str, Any] = {}
    for setting in _settings():
        given = getattr(args, setting.dest, None) if args is not None else None
        if given is True:  # a switch given on the command line
            values[setting.name] = not setting.option.inverted
        elif given is not None:
            values[setting.name] = setting.parse(given, setting.option.flag or setting.name)
        elif environ.get(setting.env):
            values[setting.name] = setting.parse(environ[setting.env], setting.env)
    return ServeSettings(**values)


# An adapter's name: a model id, a folder name on the share and a PEFT adapter name (no dots) at once.
ADAPTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_adapter_name(name: str, source: str) -> str:
    """*name* if it can name an adapter (letters, digits, ``_`` and ``-``, 64 at most, not ``default``).

    :raises ServeError: it cannot; the message names *source*.
    """
    if not ADAPTER_NAME.fullmatch(name) or name == "default":
        raise ServeError(f"{source}: adapter name {name!r} must be 1 to 64 letters, digits, '_' or '-', "
                         "starting with a letter or digit, and not 'default'")
    return name


def named_adapters(values: tuple[str, ...]) -> dict[str, Path]:
    """The ``--adapter NAME=DIR`` values as name -> folder.

    :raises ServeError: a value is not ``NAME=DIR``, a name is invalid or given twice.
    """
    result: dict[str, Path] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not folder:
            raise ServeError(f"--adapter {value!r}: expected NAME=DIR")
        if check_adapter_name(name, f"--adapter {value!r}") in result:
            raise ServeError(f"--adapter {value!r}: the name {name!r} is given twice")
        result[name] = Path(folder)
    return result


def markdown_table() -> str:
    """The settings as the Markdown table in ``docs/serve.md``."""
    rows = ["| option | environment | default | what |", "| --- | --- | --- | --- |"]
    for setting in _settings():
        option = setting.option
        flag = f"`{option.flag}`" if option.flag else "(none: a secret)"
        env = f"`{setting.env}=1`" if setting.kind is bool else f"`{setting.env}`"
        rows.append(f"| {flag} | {env} | {option.shown_default} | {option.help} |")
    return "\n".join(rows) + "\n"

