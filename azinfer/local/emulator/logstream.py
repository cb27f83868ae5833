"""Container Apps' log stream: line formats and the streamed body.

Lines are JSON objects written the way the service's .NET serializer writes
them: no spaces, and ``"`` ``&`` ``'`` ``+`` ``<`` ``>`` `````, control and non-ASCII
characters as ``\\uXXXX`` (upper-case hex) -- which is why ``az containerapp logs
show`` replaces the literal text ``\\u0022``, ``\\u001B``, ``\\u002B``, ``\\u0027``
before printing.  A client must parse each line as JSON, not print it.

* console, ``output=json``: ``{"TimeStamp":"2026-06-03T04:45:59.2214149\\u002B00:00","Log":"..."}``; the
  fraction is .NET's ticks without trailing zeros, so its length varies (``03.874901\\u002B00:00``)
* console, ``output=text``: the raw line
* system: ``{"TimeStamp":"2024-02-19 08:16:40 \\u002B0000 UTC","Type":"Normal","ContainerAppName":...,
  "RevisionName":...,"ReplicaName":...,"Msg":...,"Reason":...,"EventSource":"ContainerAppController","Count":0}``

Every stream opens with two connection lines stamped when it connects, in another format than the history
after them (MicrosoftDocs ``articles/container-apps/troubleshooting.md``, the ``az containerapp logs show``
examples): console ``{"TimeStamp":"2023-10-06T21:41:30.10108","Log":"Connecting to the container 'name'..."}``
then ``Successfully Connected to container: 'name' [Revision: '...', Replica: '...']`` (no UTC offset); system
``{"TimeStamp":"2023-10-06T22:14:01Z",...,"Msg":"Connecting to the events collector...",
"Reason":"StartingGettingEvents",...}`` then ``Successfully connected to events server``
(``ConnectedToEventsServer``), with null app, revision and replica names.

While nothing is logged the stream sends a heartbeat line (``No logs since last
60 seconds``) every :attr:`StreamSettings.heartbeat` seconds, and it ends after
:attr:`StreamSettings.max_seconds` (about 3 minutes on Azure) or
:attr:`StreamSettings.max_lines`; ``drop="abort"`` closes the connection
mid-body instead of ending the chunked body cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["StreamSettings", "StreamAborted", "net_json", "console_line", "system_line", "console_opening",
           "system_opening", "follow"]


@dataclass
class StreamSettings:
    """How the emulator's log streams behave (``emu.apps.stream``); read when a stream starts."""

    heartbeat: float = 60.0
    """Seconds without a line before the heartbeat line."""
    max_seconds: float | None = 180.0
    """The stream ends this many seconds after it started (None: never)."""
    max_lines: int | None = None
    """The stream ends after sending this many lines, tail and heartbeats included (None: never)."""
    drop: str = "close"
    """How it ends: "close" (the chunked body ends) or "abort" (the connection closes mid-body)."""
    default_tail: int = 20
    """``tailLines`` when the request has none (the CLI's default; the service's own is not documented)."""


class StreamAborted(Exception):
    """Raised by a stream body to make the server close the connection without ending the body."""


_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_ESCAPED = set("\"&'+<>`")


def _net_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif code < 0x20 or code > 0x7E or ch in _ESCAPED:
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}")
            else:
                out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def net_json(obj: dict[str, Any]) -> str:
    """A flat JSON object as .NET's default encoder writes it."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "null"
        if isinstance(v, (int, float)):
            return str(v)
        return _net_string(str(v))

    return "{" + ",".join(f"{_net_string(k)}:{value(v)}" for k, v in obj.items()) + "}"


def _ticks(dt: datetime) -> str:
    """The fraction of a second as .NET writes ticks (``.FFFFFFF``): no trailing zeros, no dot when zero."""
    digits = f"{dt.microsecond * 10:07d}".rstrip("0")
    return "." + digits if digits else ""


def console_timestamp(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + _ticks(dt) + "+00:00"


def system_timestamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def console_line(ts: float, text: str, output: str) -> bytes:
    if output == "text":
        return (text + "\n").encode()
    return (net_json({"TimeStamp": console_timestamp(ts), "Log": text}) + "\n").encode()


def system_line(event: dict[str, Any]) -> bytes:
    return (net_json(event) + "\n").encode()


def console_opening(container: str, revision: str, replica: str, output: str) -> list[bytes]:
    """The two lines a console stream opens with, stamped now without a UTC offset."""
    texts = (f"Connecting to the container '{container}'...",
             f"Successfully Connected to container: '{container}' [Revision: '{revision}', Replica: '{replica}']")
    lines = []
    for text in texts:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S") + _ticks(now)
        # The text form shows the stamp, two spaces and the text (a public API reference of this stream).
        line = f"{stamp}  {text}" if output == "text" else net_json({"TimeStamp": stamp, "Log": text})
        lines.append((line + "\n").encode())
    return lines


def system_opening() -> list[bytes]:
    """The two lines a system (event) stream opens with, stamped now in whole seconds with a ``Z``."""
    return [system_line({"TimeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Type": "Normal",
                         "ContainerAppName": None, "RevisionName": None, "ReplicaName": None, "Msg": msg,
                         "Reason": reason, "EventSource": "ContainerAppController", "Count": 1})
            for msg, reason in (("Connecting to the events collector...", "StartingGettingEvents"),
                                ("Successfully connected to events server", "ConnectedToEventsServer"))]


def follow(settings: StreamSettings, *, opening: list[bytes], initial: list[bytes],
           poll: Callable[[float], tuple[list[bytes], bool]], heartbeat: Callable[[], bytes],
           follow_on: bool) -> Iterator[bytes]:
    """The body of a stream: the opening lines, the tail, then (``follow_on``) new lines as ``poll(timeout)`` returns them.

    ``poll`` waits up to ``timeout`` seconds and returns (new lines, still alive); the stream ends when
    the source is gone, on the settings' limits (the opening lines do not count), or when the emulator stops.
    """
    yield from opening
    sent = 0
    for line in initial:
        if settings.max_lines is not None and sent >= settings.max_lines:
            break
        yield line
        sent += 1
    if not follow_on:
        return
    started = last = time.monotonic()
    while True:
        now = time.monotonic()
        if settings.max_lines is not None and sent >= settings.max_lines:
            break
        if settings.max_seconds is not None and now - started >= settings.max_seconds:
            break
        wait = 0.05
        if settings.max_seconds is not None:
            wait = min(wait, max(settings.max_seconds - (now - started), 0.0))
        wait = min(wait, max(settings.heartbeat - (now - last), 0.0))
        lines, alive = poll(wait)
        for line in lines:
            if settings.max_lines is not None and sent >= settings.max_lines:
                break
            yield line
            sent += 1
            last = time.monotonic()
        if not alive:
            return
        if time.monotonic() - last >= settings.heartbeat:
            yield heartbeat()
            sent += 1
            last = time.monotonic()
    if settings.drop == "abort":
        raise StreamAborted()
