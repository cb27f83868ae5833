"""Container Apps' log stream: the container's console log or the app's system events, reopened when it drops.

The stream is plain HTTPS (``httpx``) to the app's ``eventStreamEndpoint``
with a token from ``getAuthToken``. Lines are JSON written by .NET (``"`` as
``\\u0022``): each is parsed, not printed raw. The service ends a stream
after a few minutes and sends a heartbeat line every 60 s while nothing is
logged, so a follow that hears nothing for :data:`IDLE_TIMEOUT` seconds takes
the connection for dead and reopens it. Each stream opens with two connection
lines stamped when it connects, in another format than the history after them
(MicrosoftDocs ``articles/container-apps/troubleshooting.md``): they are not
shown. A reopened stream repeats its tail; the lines already shown are
recognised by their time stamps, compared as times (the history's stamps
vary in length), and skipped.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from azinfer.azure.app import active_revision, app_properties, name_of, read_app
from azinfer.azure.clients import AzureClients, enum_text
from azinfer.errors import AzureError

if TYPE_CHECKING:  # pragma: no cover
    from azure.mgmt.appcontainers.models import ContainerApp, Replica

    from azinfer.azure.app import Verify

__all__ = ["IDLE_TIMEOUT", "MAX_TAIL", "log_lines"]

IDLE_TIMEOUT = 150.0
"""Seconds of silence after which a followed stream counts as dropped (the service's heartbeat comes every 60 s)."""
MAX_TAIL = 300
"""The most history lines the service sends (``tailLines``)."""

class _Unavailable(AzureError):
    """The stream cannot be read now (no replica, an error answer, Azure not answering): a follow tries again."""


class _Dropped(Exception):
    """The connection broke or went silent: tried again, following or not."""


def _parse(raw: str) -> dict[str, Any] | None:
    # .NET's escapes (\u0022, \u002B...) are JSON's own: decoded by the parser, never replaced before it
    # (a quote in a log line would end its string early).
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _format(raw: str, data: dict[str, Any] | None, system: bool) -> str:
    if data is None:
        return raw
    stamp = data.get("TimeStamp", "")
    if system:
        return f"{stamp} {data.get('Type', '')} {data.get('Reason', '')}: {data.get('Msg', '')}".strip()
    return f"{stamp} {data.get('Log', '')}".strip()


# How far this machine's clock may be ahead of the log service's (see _Shown.since).
CLOCK_SKEW = timedelta(seconds=2)

# The lines every stream opens with, stamped at connect time: console ones have no UTC offset in their stamp.
_CONNECTING = ("Connecting to the container '", "Successfully Connected to container: '")
_CONNECTING_REASONS = frozenset({"StartingGettingEvents", "ConnectedToEventsServer"})

# Console ``2023-10-06T21:41:03.8738333+00:00`` (the fraction's length varies), the connection lines'
# ``2023-10-06T21:41:30.10108`` and ``2023-10-06T22:14:01Z``, system ``2023-10-06 21:41:33 +0000 UTC``.
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?(?: UTC)?")

_Time = tuple[datetime, int]
"""A stamp as a time: the whole second (UTC) and the nanoseconds (the service writes up to seven digits)."""


def _is_connection_line(data: dict[str, Any] | None) -> bool:
    """Whether a parsed line is one a stream opens with (not the app's, and new at every connection)."""
    if data is None:
        return False
    if data.get("Reason") in _CONNECTING_REASONS:
        return True
    log, stamp = data.get("Log"), data.get("TimeStamp")
    if not (isinstance(log, str) and log.startswith(_CONNECTING) and isinstance(stamp, str)):
        return False
    match = _STAMP.fullmatch(stamp)
    return match is not None and match.group(4) is None  # the app's own lines are stamped with +00:00


def _stamp_time(stamp: str) -> _Time | None:
    """A stamp in any of the stream's formats as a time (UTC when it has no offset); None if none of them."""
    match = _STAMP.fullmatch(stamp.strip())
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    try:
        whole = datetime.fromisoformat(f"{day}T{clock}{'+00:00' if offset in (None, 'Z') else offset}")
    except ValueError:
        return None
    return whole.astimezone(UTC), int((fraction or "")[:9].ljust(9, "0"))


def _time_of(moment: datetime) -> _Time:
    return moment.replace(microsecond=0), moment.microsecond * 1000


class _Shown:
    """The newest time shown and the lines shown with it, so a reopened stream's repeated tail is skipped.

    Lines with the newest time are counted, since several lines may share one
    (system events carry whole seconds).

    A stream reopened before it showed anything (``--tail 0`` and a quiet app)
    has no time to go on: it asks for the whole history and shows the lines
    stamped after the first connection opened (less :data:`CLOCK_SKEW`), so
    lines logged during the reconnect are not lost.
    """

    def __init__(self) -> None:
        self.latest: _Time | None = None
        self.since: _Time | None = None
        self._at_latest: Counter[str] = Counter()
        self._repeats: Counter[str] | None = None
        self._blind = False

    @property
    def resumable(self) -> bool:
        """Whether a reopened stream can tell what was shown: then it asks for the whole history."""
        return self.latest is not None or self.since is not None

    def opened(self) -> None:
        """A connection answered; the first one marks the time the following started."""
        if self.since is None:
            self.since = _time_of(datetime.now(UTC) - CLOCK_SKEW)

    def reopened(self) -> None:
        """A new connection: its first lines repeat what was shown, up to the first newer line."""
        self._repeats = Counter(self._at_latest) if self.latest is not None else None
        self._blind = self.latest is None and self.since is not None

    def is_new(self, raw: str, stamp: str | None) -> bool:
        """Whether to show ``raw``; records it when so."""
        when = _stamp_time(stamp) if stamp is not None else None
        if self._blind and when is not None and self.since is not None and when < self.since:
            return False  # history from before the follow started
        if self._repeats is not None and when is not None and self.latest is not None:
            if when < self.latest:
                return False
            if when == self.latest and self._repeats[raw] > 0:
                self._repeats[raw] -= 1
                return False
            self._repeats = None  # past the repeated tail: from here on, everything is new
        if when is not None and (self.latest is None or when > self.latest):
            self.latest, self._at_latest = when, Counter()
        if when is not None and when == self.latest:
            self._at_latest[raw] += 1
        self._blind = False  # the history is in order: what follows is newer
        return True


def _new_lines(raws: Iterable[str], shown: _Shown, system: bool) -> Iterator[str]:
    """One connection's lines to show, formatted: not blank, not a connection line, not shown before."""
    for raw in raws:
        if not raw.strip():
            continue
        data = _parse(raw)
        if _is_connection_line(data):
            continue
        stamp = data.get("TimeStamp") if data is not None else None
        if shown.is_new(raw, stamp if isinstance(stamp, str) else None):
            yield _format(raw, data, system)


def _preference(replica: Replica) -> tuple[bool, bool, datetime]:
    """A running replica before one still starting or going away; the newest among them."""
    props = replica.properties
    running = props is not None and (enum_text(props.running_state) or "").lower() == "running"
    created = props.created_time if props is not None else None
    return running, created is not None, created or datetime.min


def _stream_url(clients: AzureClients, resource_group: str, app: ContainerApp, system: bool) -> str:
    name = name_of(app)
    endpoint = app_properties(app).event_stream_endpoint or ""
    cut = endpoint.find("/subscriptions/")
    if cut < 0:
        raise AzureError(f"container app {name!r} reports no log stream endpoint (eventStreamEndpoint)")
    base = endpoint[:cut] + f"{clients.scope(resource_group)}/containerApps/{name}"
    if system:
        return f"{base}/eventstream"
    revision = active_revision(clients, resource_group, app)
    if revision is None:
        raise _Unavailable(f"container app {name!r} has no revision yet, so no console log")
    replicas = clients.apps.container_apps_revision_replicas.list_replicas(resource_group, name, revision).value or []
    if not replicas:
        raise _Unavailable(f"revision {revision!r} has no replica running (scaled to zero?), so no console log; "
                           "try --system, or wake it with a request")
    replica = max(replicas, key=_preference)
    rev = clients.apps.container_apps_revisions.get_revision(resource_group, name, revision)
    template = rev.properties.template if rev.properties is not None else None
    containers = (template.containers if template is not None else None) or []
    if not containers or not containers[0].name:
        raise _Unavailable(f"revision {revision!r} reports no container, so no console log")
    return f"{base}/revisions/{revision}/replicas/{replica.name}/containers/{containers[0].name}/logstream"


def log_lines(clients: AzureClients, resource_group: str, app_name: str, *, follow: bool = False,
              tail: int = 20, system: bool = False, verify: Verify = True, reconnect_delay: float = 1.0,
              max_reconnects: int = 10, idle_timeout: float = IDLE_TIMEOUT,
              on_reconnect: Callable[[str], None] | None = None) -> Iterator[str]:
    """The container's console log (or the app's system events), one formatted line at a time.

    A stream that drops, ends or stays silent for ``idle_timeout`` seconds
    while following is opened again (a fresh token, the replica found again,
    up to :data:`MAX_TAIL` lines of history asked for and those already shown
    skipped), so lines logged in between are not lost and none is shown twice.
    With ``follow`` it goes on until the caller stops iterating (Ctrl-C);
    without, it ends with the stream. A stream that brought lines is reopened
    at once; after that the wait between attempts doubles from
    ``reconnect_delay`` (at most 30 s), and ``max_reconnects`` attempts in a
    row without a line end it.

    :raises AzureError: at once when ``tail`` is out of range; while iterating, when the app does not
        exist, has no replica (without ``follow``), or the stream keeps failing.
    """
    if not 0 <= tail <= MAX_TAIL:
        raise AzureError(f"--tail {tail}: expected 0 to {MAX_TAIL} lines (the log stream's limit)")
    return _lines(clients, resource_group, app_name, follow=follow, tail=tail, system=system, verify=verify,
                  reconnect_delay=reconnect_delay, max_reconnects=max_reconnects, idle_timeout=idle_timeout,
                  on_reconnect=on_reconnect)


def _lines(clients: AzureClients, resource_group: str, app_name: str, *, follow: bool, tail: int, system: bool,
           verify: Verify, reconnect_delay: float, max_reconnects: int, idle_timeout: float,
           on_reconnect: Callable[[str], None] | None) -> Iterator[str]:
    shown = _Shown()
    failures = 0
    while True:
        try:
            for line in _stream(clients, resource_group, app_name, follow=follow, tail=tail, system=system,
                                verify=verify, idle_timeout=idle_timeout, shown=shown):
                failures = 0
                yield line
            if not follow:
                return
            reason = "the stream ended"
        except _Unavailable as exc:
            if not follow:
                raise AzureError(str(exc)) from None
            reason = str(exc).split(";", 1)[0]
        except _Dropped as exc:
            reason = str(exc)
        failures += 1
        if failures > max_reconnects:
            raise AzureError(f"the log stream keeps failing ({reason}); try again later")
        if on_reconnect is not None:
            on_reconnect(f"{reason}; reconnecting")
        if failures > 1:  # a stream that brought lines is reopened at once (the service ends each after minutes)
            time.sleep(min(reconnect_delay * 2 ** (failures - 2), 30.0))


def _stream(clients: AzureClients, resource_group: str, app_name: str, *, follow: bool, tail: int, system: bool,
            verify: Verify, idle_timeout: float, shown: _Shown) -> Iterator[str]:
    """One connection's lines not shown yet.

    :raises AzureError: when the app does not exist (final, following or not).
    :raises _Unavailable: when there is nothing to connect to or the stream refuses.
    :raises _Dropped: when the connection breaks or stays silent.
    """
    import httpx
    from azure.core.exceptions import AzureError as SdkError
    from azure.core.exceptions import HttpResponseError

    app = read_app(clients, resource_group, app_name)
    try:
        url = _stream_url(clients, resource_group, app, system)
        auth = clients.apps.container_apps.get_auth_token(resource_group, app_name)
    except SdkError as exc:  # an ARM hiccup while reopening: a follow outlives it
        reason = (exc.reason if isinstance(exc, HttpResponseError) else None) or type(exc).__name__
        raise _Unavailable(f"Azure did not answer about the log stream ({reason})") from None
    token = auth.properties.token if auth.properties is not None else None
    if not token:
        raise _Unavailable(f"container app {app_name!r} gave no token for its log stream (getAuthToken)")
    # History again after a drop: the lines logged meanwhile are in it (those shown are skipped).
    params = {"follow": "true" if follow else "false", "output": "json",
              "tailLines": str(MAX_TAIL if shown.resumable else tail)}
    shown.reopened()
    try:
        with httpx.stream("GET", url, params=params, headers={"Authorization": f"Bearer {token}"}, verify=verify,
                          timeout=httpx.Timeout(30.0, read=idle_timeout if follow else 60.0)) as response:
            if response.status_code != 200:
                detail = response.read().decode(errors="replace").strip()[:120]
                raise _Unavailable(f"the log stream answered {response.status_code} {detail}".strip())
            shown.opened()
            yield from _new_lines(response.iter_lines(), shown, system)
    except httpx.TimeoutException:
        raise _Dropped(f"no line for {idle_timeout:g} s" if follow else "the stream timed out") from None
    except httpx.TransportError as exc:
        raise _Dropped(f"the stream dropped ({type(exc).__name__})") from None
