"""The log stream's lines as Azure sends them: connection lines skipped, a reopened stream's tail not shown again.

The samples are the documented ones (MicrosoftDocs ``articles/container-apps/troubleshooting.md``, the
``az containerapp logs show`` examples): each stream opens with two lines stamped when it connects, in
another format than the history after it, whose fractions vary in length. The emulator sends the same
shapes; ``tests/test_lifecycle.py`` follows them across dropped connections end to end.
"""

from __future__ import annotations

from azinfer.azure.logstream import _new_lines, _Shown, _stamp_time

CONSOLE_HISTORY = [
    '{"TimeStamp":"2023-10-06T21:41:03.8738333+00:00","Log":"Microsoft.Hosting.Lifetime[14]"}',
    '{"TimeStamp":"2023-10-06T21:41:03.8738652+00:00","Log":"Now listening on: http://[::]:3500"}',
    '{"TimeStamp":"2023-10-06T21:41:03.874901+00:00","Log":"Microsoft.Hosting.Lifetime[0]"}',
    '{"TimeStamp":"2023-10-06T21:41:03.8749081+00:00","Log":"Application started. Press Ctrl+C to shut down."}',
]
SYSTEM_HISTORY = [
    '{"TimeStamp":"2023-10-06 21:41:33 \\u002B0000 UTC","Type":"Normal","ContainerAppName":"app",'
    '"RevisionName":"app--1","ReplicaName":"app--1-76df875978-rn4wx","Msg":"Created container app",'
    '"Reason":"ContainerCreated","EventSource":"ContainerAppController","Count":3}',
    '{"TimeStamp":"2023-10-06 21:43:04 \\u002B0000 UTC","Type":"Warning","ContainerAppName":"app",'
    '"RevisionName":"app--1","ReplicaName":"app--1-76df875978-rn4wx","Msg":"Container \'app\' was terminated '
    'with exit code \'0\'","Reason":"Completed","EventSource":"ContainerAppController","Count":1}',
]


def _console_opening(connected: str) -> list[str]:
    return [f'{{"TimeStamp":"{connected}","Log":"Connecting to the container \'app\'..."}}',
            f'{{"TimeStamp":"{connected}4","Log":"Successfully Connected to container: \'app\' '
            '[Revision: \'app--1\', Replica: \'app--1-76df875978-rn4wx\']"}']


def _system_opening(connected: str) -> list[str]:
    return [f'{{"TimeStamp":"{connected}","Type":"Normal","ContainerAppName":null,"RevisionName":null,'
            f'"ReplicaName":null,"Msg":"{msg}","Reason":"{reason}","EventSource":"ContainerAppController","Count":1}}'
            for msg, reason in (("Connecting to the events collector...", "StartingGettingEvents"),
                                ("Successfully connected to events server", "ConnectedToEventsServer"))]


def _connections(*bodies: list[str], system: bool = False) -> list[list[str]]:
    """What each connection of one follow shows."""
    shown = _Shown()
    out = []
    for i, body in enumerate(bodies):
        if i:
            shown.reopened()
        shown.opened()
        out.append(list(_new_lines(body, shown, system)))
    return out


def test_a_reopened_console_stream_shows_only_what_is_new() -> None:
    later = '{"TimeStamp":"2023-10-06T21:45:00.1+00:00","Log":"GET /v1/models 200"}'
    first, second = _connections(
        _console_opening("2023-10-06T21:41:30.10108") + CONSOLE_HISTORY,
        _console_opening("2023-10-06T21:44:59.9") + CONSOLE_HISTORY + [later],  # the service's tail again
    )
    assert [line.split(" ", 1)[1] for line in first] == [
        "Microsoft.Hosting.Lifetime[14]", "Now listening on: http://[::]:3500", "Microsoft.Hosting.Lifetime[0]",
        "Application started. Press Ctrl+C to shut down."]
    assert second == ["2023-10-06T21:45:00.1+00:00 GET /v1/models 200"]


def test_a_reopened_system_stream_shows_only_what_is_new() -> None:
    later = SYSTEM_HISTORY[1].replace("21:43:04", "21:44:14").replace('"Count":1', '"Count":2')
    first, second = _connections(
        _system_opening("2023-10-06T22:14:01Z") + SYSTEM_HISTORY,
        _system_opening("2023-10-06T22:20:07Z") + SYSTEM_HISTORY + [later],
        system=True,
    )
    assert [line.split(" UTC ", 1)[1] for line in first] == [
        "Normal ContainerCreated: Created container app", "Warning Completed: Container 'app' was terminated "
        "with exit code '0'"]
    assert second == ["2023-10-06 21:44:14 +0000 UTC Warning Completed: Container 'app' was terminated with "
                      "exit code '0'"]


def test_stamps_of_every_format_compare_as_times() -> None:
    stamps = ["2023-10-06T21:41:03.874901+00:00", "2023-10-06T21:41:03.8749081+00:00",
              "2023-10-06 21:41:33 +0000 UTC", "2023-10-06T23:41:34+02:00", "2023-10-06T21:41:35Z",
              "2023-10-06T21:41:35.5", "2025-08-26 17:42:19.4145161 +0000 UTC"]
    times = [_stamp_time(s) for s in stamps]
    assert None not in times and times == sorted(times)  # the list is in time order
    earlier, later = "2023-10-06T21:00:00Z", "2023-10-06 22:00:00 +0000 UTC"
    assert earlier > later and _stamp_time(earlier) < _stamp_time(later), "compared as times, not as text"
    assert _stamp_time("yesterday") is None


def test_a_line_with_quotes_as_net_escapes_them_is_parsed_and_not_shown_twice() -> None:
    # uvicorn's access lines quote the request; the service writes each quote as \u0022.
    access = ('{"TimeStamp":"2023-10-06T21:45:00.1\\u002B00:00","Log":"INFO:     127.0.0.1:5 - '
              '\\u0022GET /health HTTP/1.1\\u0022 200 OK"}')
    first, second = _connections(_console_opening("2023-10-06T21:44:59.9") + [access],
                                 _console_opening("2023-10-06T21:46:00.2") + [access])
    assert first == ['2023-10-06T21:45:00.1+00:00 INFO:     127.0.0.1:5 - "GET /health HTTP/1.1" 200 OK']
    assert second == []
