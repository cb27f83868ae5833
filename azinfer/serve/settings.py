"""The server's settings, from command-line options or ``AZINFER_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from azinfer.errors import ServeError

__all__ = ["ServeSettings", "DEFAULT_PROMPT_TEMPLATE", "ENGINE_CHOICES", "LOOPBACK_HOSTS"]

# The AI Toolkit's Phi-3 template; used only for a tokenizer without a chat template.
DEFAULT_PROMPT_TEMPLATE = "<|user|>\n{}<|end|>\n<|assistant|>\n"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# ``auto``: vLLM when a CUDA GPU and vLLM are present, else ``batched`` (azinfer.serve.server.choose_engine).
ENGINE_CHOICES = ("auto", "batched", "vllm", "baseline")


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``azinfer serve`` needs; paths left ``None`` are found under ``mount_root``.

    ``api_key`` is a secret: it is never logged nor shown in an error.
    """

    mount_root: Path = Path("/mount")
    model_dir: Path | None = None
    adapter_dir: Path | None = None
    base_only: bool = False
    merge: bool = True
    load_in_4bit: bool = False
    host: str | None = None
    port: int = 7860
    api_key: str | None = None
    insecure_no_auth: bool = False
    model_name: str | None = None
    engine: str = "auto"
    max_batch_size: int = 16
    max_queue: int = 64
    default_max_tokens: int = 256
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    # Limits on one client (docs/serve.md explains each default).
    max_body_bytes: int = 4 * 2**20
    body_timeout: float = 60.0
    header_timeout: float = 10.0
    max_connections: int = 512

    def __post_init__(self) -> None:
        """Check values that no later step can recover from.

        :raises ServeError: a value is out of range or the options contradict each other.
        """
        if not 0 < self.port < 65536:
            raise ServeError(f"port {self.port} is not between 1 and 65535")
        if self.max_batch_size < 1 or self.max_queue < 0 or self.default_max_tokens < 1:
            raise ServeError("max batch size and default max tokens must be at least 1, max queue at least 0")
        if self.max_body_bytes < 1024 or self.max_connections < 1:
            raise ServeError("max body bytes must be at least 1024, max connections at least 1")
        if not (self.body_timeout > 0 and self.header_timeout > 0):
            raise ServeError("the body and header timeouts must be more than 0 seconds")
        if self.prompt_template.count("{}") != 1:
            raise ServeError("the prompt template must contain exactly one '{}' placeholder")
        if self.engine not in ENGINE_CHOICES:
            raise ServeError(f"unknown engine {self.engine!r}: expected one of {', '.join(ENGINE_CHOICES)}")
        if self.base_only and self.adapter_dir is not None:
            raise ServeError("--base-only and --adapter-dir contradict each other")
        if self.api_key is not None and not self.api_key.strip():
            raise ServeError("the API key is empty")

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
