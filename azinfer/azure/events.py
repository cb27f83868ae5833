"""One event stream for every operation's progress, and one question type for every confirmation.

Each operation (provision, deploy, logs, destroy, up, rollback) takes ``on_event``, called
with an :class:`Event` for each step: a resource's state, a stage in words,
an upload's totals and bytes, a log stream reopened. Operations that change
something take ``confirm``, called once with a :class:`Question` before
anything is written; answering ``False`` is a result (``declined=True``),
not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

__all__ = ["Operation", "EventKind", "Event", "EventCallback", "Question", "ConfirmCallback", "Emitter", "duration_text"]

T = TypeVar("T")


class Operation(str, Enum):
    """The operation an event or a question belongs to."""

    PROVISION = "provision"
    """Plan, preview, ARM deployment, config file."""
    DEPLOY = "deploy"
    """Share sync, restart, wait for ``/ready``."""
    LOGS = "logs"
    """The container's log stream."""
    DESTROY = "destroy"
    """Deleting what azinfer created."""
    UP = "up"
    """``azinfer up``'s own stages (plan, provision, ready, smoke test), each timed; the operations it runs
    report under their own names."""
    ROLLBACK = "rollback"
    """Traffic back to the revision a canary deploy replaced."""


class EventKind(str, Enum):
    """What an :class:`Event` reports, and so which of its fields are set."""

    RESOURCE = "resource"
    """A resource's state changed, or it is still in progress a minute later: ``resource_type``,
    ``resource_name``, ``state``, ``elapsed`` (``code``, ``message`` on failure)."""
    STAGE = "stage"
    """A step begins or ends, in words: ``message``."""
    TRANSFER = "transfer"
    """An upload begins: ``files`` files, ``total`` bytes in all."""
    BYTES = "bytes"
    """``sent`` more bytes of ``path`` reached the share (0 when the file starts)."""
    RECONNECT = "reconnect"
    """The log stream dropped and is opened again: ``message`` says why."""


@dataclass(frozen=True)
class Event:
    """One step of an operation's progress; holds no secret."""

    operation: Operation
    kind: EventKind
    message: str = ""
    resource_type: str = ""
    resource_name: str = ""
    state: str = ""
    code: str | None = None
    path: str = ""
    sent: int = 0
    files: int = 0
    total: int = 0
    elapsed: float | None = None
    """Seconds since the resource's operation was first seen (``RESOURCE``)."""

    def to_text(self) -> str:
        """The event as one line."""
        if self.kind is EventKind.RESOURCE:
            detail = f"  ({self.code}: {self.message})" if self.code else ""
            took = f"  {duration_text(self.elapsed)}" if self.elapsed is not None else ""
            return f"{self.state:<10} {self.resource_type} {self.resource_name}{took}{detail}"
        if self.kind is EventKind.TRANSFER:
            return f"uploading {self.files} file(s) ({self.total} bytes)"
        if self.kind is EventKind.BYTES:
            return f"{self.path}: {self.sent} bytes"
        return self.message


EventCallback = Callable[[Event], None]


def duration_text(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: an elapsed time as a person reads it."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class Emitter:
    """Sends one operation's events to ``on_event`` (nothing when it is ``None``)."""

    def __init__(self, operation: Operation, on_event: EventCallback | None) -> None:
        self.operation = operation
        self._on_event = on_event

    def __call__(self, kind: EventKind, **fields: Any) -> None:
        if self._on_event is not None:
            self._on_event(Event(self.operation, kind, **fields))

    def stage(self, message: str) -> None:
        """A stage, in words."""
        self(EventKind.STAGE, message=message)

    def bytes(self, path: str, sent: int) -> None:
        """Bytes of ``path`` reached the share (the share sync's callback)."""
        self(EventKind.BYTES, path=path, sent=sent)


@dataclass(frozen=True)
class Question(Generic[T]):
    """What an operation asks before it writes: the question, the summary to show, and the value it is about."""

    operation: Operation
    asks: str
    """The question, e.g. ``"Provision these changes?"``."""
    summary: str
    """What will happen, as text to show before the question."""
    subject: T
    """The value the answer decides: a ``Preview``, a ``SyncSummary`` or a ``TeardownPlan``."""
    worth_asking: bool = True
    """``False`` when nothing risky is involved (the command line then goes ahead without asking)."""


ConfirmCallback = Callable[[Question[Any]], bool]
