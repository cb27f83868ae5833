"""What every command shows on the terminal: one-line errors, exit codes, questions, progress.

Errors are one message on stderr, never a traceback. Colour and live
redrawing only on a terminal (never with ``NO_COLOR`` set): ``rich`` draws
them; anywhere else each change is one plain line, so logs and pipes stay
readable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from azinfer._printable import printable
from azinfer.errors import AzinferError, ReadyTimeout

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from azinfer.azure.events import Event, Question

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "EXIT_DECLINED",
    "use_color",
    "console",
    "sdk_logs",
    "report_errors",
    "confirm",
    "ask",
    "declined",
    "EventDisplay",
    "ResourceProgressDisplay",
    "TransferDisplay",
]

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
EXIT_USAGE = 2  # as argparse's own usage errors
EXIT_DECLINED = 3
"""The question was answered no: nothing was changed."""
# The optional dependencies a command may lack, and the extra that brings them.
_EXTRAS = {name: "azure" for name in ("azure", "msal")} | {
    name: "serve" for name in ("torch", "transformers", "peft", "starlette", "uvicorn", "safetensors")
}


def use_color(stream: TextIO) -> bool:
    """Whether to draw colour and redraw in place on ``stream``: a terminal, and no ``NO_COLOR``."""
    return stream.isatty() and "NO_COLOR" not in os.environ


def console(stream: TextIO | None = None) -> Console:
    """A ``rich`` console on ``stream`` (default stdout) that colours only where :func:`use_color` says."""
    from rich.console import Console

    stream = stream or sys.stdout
    live = use_color(stream)
    return Console(file=stream, force_terminal=live, no_color=not live, highlight=False, soft_wrap=True)


def sdk_logs(verbose: bool) -> None:
    """Keep the Azure SDK's log off the terminal, or (``verbose``) show it on stderr.

    Without a handler of its own, a library's warnings reach logging's
    last-resort handler: a failed sign-in would print a dozen lines of
    credential attempts before azinfer's one-line error.
    """
    import logging

    for name in ("azure", "msal"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        if verbose:
            handler: logging.Handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            logger.setLevel(logging.INFO)
            logger.propagate = False
        else:
            handler = logging.NullHandler()
        logger.addHandler(handler)


def fail(message: str) -> None:
    """Print ``azinfer: error: <message>`` on stderr."""
    print(f"azinfer: error: {printable(message, keep_newlines=True)}", file=sys.stderr)


def show_last_logs(exc: ReadyTimeout) -> None:
    """The container's last log lines, with the output (the error itself stays one line)."""
    if exc.last_logs:
        print("The container's last log lines:")
        print("".join(f"  {line}\n" for line in exc.last_logs), end="", flush=True)


def report_errors(handler: Callable[[], int]) -> int:
    """Run a command; turn azinfer's errors (Azure's arrive translated), a missing extra and Ctrl-C into a
    message and an exit code."""
    try:
        return int(handler())
    except ReadyTimeout as exc:  # whichever command waited: the container's last lines, then the one-line error
        show_last_logs(exc)
        fail(str(exc))
        return EXIT_FAILED
    except AzinferError as exc:
        fail(str(exc))
        return EXIT_FAILED
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        fail(f"{exc.name} is not installed: pip install 'azinfer[{extra}]'")
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("azinfer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def confirm(question: str, *, yes: bool, flag: str = "--yes") -> bool:
    """Ask ``question`` on the terminal; ``yes`` answers it; without a terminal, refuse to guess.

    :raises AzinferError: when stdin is not a terminal and ``yes`` is false.
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        raise AzinferError(f"not asking on a non-interactive input: pass {flag} to go ahead without a question")
    # Not input(): its prompt goes to stderr when readline is not loaded, and Ctrl-D would raise EOFError.
    sys.stdout.write(f"{question} [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def ask(question: Question[Any], *, yes: bool, summary: str | None = None) -> bool:
    """Show the question's summary (or ``summary``), then ask it when it is worth asking (see :func:`confirm`)."""
    sys.stdout.write(question.summary if summary is None else summary)
    return not question.worth_asking or confirm(question.asks, yes=yes)


def declined(what: str) -> int:
    """Say that the answer was no and nothing was ``what`` (changed, deleted); the exit code for it."""
    print(f"azinfer: declined: nothing was {what}", file=sys.stderr)
    return EXIT_DECLINED


class EventDisplay:
    """Every operation's events: resource states (:class:`ResourceProgressDisplay`), an upload's bytes
    (:class:`TransferDisplay`), stages as ``azinfer: <stage>`` lines, a reopened log stream on stderr.

    Pass it as the ``on_event`` callback inside a ``with`` block.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._resources = ResourceProgressDisplay(self._stream)
        self._transfer = TransferDisplay(self._stream)

    def __enter__(self) -> EventDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self._transfer.stop()
        self._resources.__exit__()

    def __call__(self, event: Event) -> None:
        from azinfer.azure.events import EventKind  # not at import: `azinfer --help` needs no azinfer.azure

        if event.kind is EventKind.RESOURCE:
            self._resources(event)
        elif event.kind is EventKind.TRANSFER:
            self._transfer.start(event.files, event.total)
        elif event.kind is EventKind.BYTES:
            self._transfer(event.path, event.sent)
        elif event.kind is EventKind.STAGE:
            self._transfer.stop()  # the upload is over once the next stage begins
            print(f"azinfer: {printable(event.message)}", file=self._stream, flush=True)
        else:
            print(f"azinfer: {printable(event.message)}", file=sys.stderr, flush=True)


class ResourceProgressDisplay:
    """Per-resource deployment progress with each resource's elapsed time: a live table on a terminal (its
    clocks tick every second), one line per event otherwise (a resource still in progress is repeated every
    minute by provision, so a long wait shows it is alive).

    Called with each resource event inside a ``with`` block; the live table
    starts with the first change (after any question) and stays on screen.
    """

    def __init__(self, stream: TextIO | None = None, *, clock: Callable[[], float] | None = None) -> None:
        import time

        self._stream = stream or sys.stdout
        self._clock = clock or time.monotonic
        # (type, name) -> state, detail, elapsed when the event came (None: unknown), when it came.
        self._rows: dict[tuple[str, str], tuple[str, str, float | None, float]] = {}
        self._live: Any = None

    def __rich__(self) -> Any:
        """The table as it is now (rich asks again at each refresh, so the clocks of running resources tick)."""
        return self._table()

    def __enter__(self) -> ResourceProgressDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        from azinfer.azure.events import duration_text

        table = Table.grid(padding=(0, 2))
        now = self._clock()
        for (resource_type, name), (state, detail, elapsed, at) in self._rows.items():
            style = {"succeeded": "green", "failed": "red"}.get(state.lower(), "yellow")
            busy = state.lower() not in ("succeeded", "failed", "canceled")
            took = "" if elapsed is None else duration_text(elapsed + (now - at if busy else 0.0))
            # Text, not markup: ARM's messages may hold brackets.
            table.add_row(Text(state, style), Text(resource_type), Text(name), Text(took), Text(detail))
        return table

    def __call__(self, progress: Event) -> None:
        detail = f"({progress.code}: {progress.message})" if progress.code else ""
        if not use_color(self._stream):
            self._stream.write(f"  {printable(progress.to_text())}\n")
            self._stream.flush()
            return
        self._rows[(progress.resource_type, progress.resource_name)] = (
            progress.state, detail, progress.elapsed, self._clock())
        if self._live is None:
            from rich.live import Live

            self._live = Live(self, console=console(self._stream), auto_refresh=True, refresh_per_second=1)
            self._live.start()
        self._live.refresh()


class TransferDisplay:
    """A byte progress bar for uploads on a terminal (``rich``); one line per file otherwise.

    Use as a context manager; call :meth:`start` with the totals, then call it with each file's bytes.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> TransferDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Take the bar off the screen (the upload is over); nothing when there is none."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start(self, files: int, total_bytes: int) -> None:
        """The upload begins: ``files`` files, ``total_bytes`` bytes in all."""
        if not use_color(self._stream) or not files:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn(f"uploading {files} file(s)"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), console=console(self._stream), transient=True)
        self._task = self._progress.add_task("upload", total=total_bytes)
        self._progress.start()

    def __call__(self, path: str, sent: int) -> None:
        """``sent`` more bytes of ``path`` reached the share (0 when the file starts)."""
        if self._progress is not None:
            self._progress.advance(self._task, sent)
        elif sent == 0:
            self._stream.write(f"  uploading {printable(path)}\n")
            self._stream.flush()
