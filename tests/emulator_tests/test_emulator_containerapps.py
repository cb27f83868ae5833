"""Container Apps at run time: revisions, replicas, restart, auth token, log stream, ingress, deletes.

Driven with azure-mgmt-appcontainers, and plain httpx for the log stream and the ingress.
"""

from __future__ import annotations

import json
import re
import threading
import time

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from azinfer.local.emulator import ReplicaStart, Response

KEY = "s3cret-key"


def app_body(fg, image="img:1", min_replicas=1, **template):
    return {
        "location": "eastus",
        "properties": {
            "environmentId": fg.id("environment"),
            "workloadProfileName": "GPU",
            "configuration": {"activeRevisionsMode": "Single",
                              "ingress": {"external": True, "targetPort": 8000},
                              "secrets": [{"name": "azinfer-api-key", "value": KEY}]},
            "template": {
                "containers": [{"name": "inference", "image": image,
                                "command": ["/bin/bash", "-c", "bash /mount/.azinfer/start.sh"],
                                "env": [{"name": "AZINFER_API_KEY", "secretRef": "azinfer-api-key"},
                                        {"name": "AZINFER_MOUNT", "value": "/mount"}],
                                "volumeMounts": [{"volumeName": "share", "mountPath": "/mount"}]}],
                "scale": {"minReplicas": min_replicas, "maxReplicas": 1},
                "volumes": [{"name": "share", "storageType": "AzureFile", "storageName": fg.environment_storage}],
                **template,
            },
        },
    }


@pytest.fixture
def create(emu, fg, aca):
    def make(name="app1", **kwargs):
        return aca.container_apps.begin_create_or_update(fg.resource_group, name, app_body(fg, **kwargs)).result()

    return make


def token_for(aca, fg, app="app1"):
    return aca.container_apps.get_auth_token(fg.resource_group, app).token


def stream_lines(emu, url, token, **params):
    """The lines after the two connection lines every stream opens with."""
    return stream_with_opening(emu, url, token, **params)[2:]


def stream_with_opening(emu, url, token, **params):
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    with httpx.stream("GET", url, params=query, headers={"Authorization": f"Bearer {token}"},
                      verify=emu.ssl_context(), timeout=10) as response:
        assert response.status_code == 200, response.read()
        return list(response.iter_lines())


def test_a_template_change_makes_a_revision_and_single_mode_switches_when_it_is_ready(emu, fg, aca, create):
    first = create()
    name1 = first.properties.latest_revision_name
    assert name1.startswith("app1--") and len(name1) == len("app1--") + 7
    assert first.properties.latest_ready_revision_name == name1
    assert first.properties.running_status == "Running"
    assert create().properties.latest_revision_name == name1  # same template: same revision

    emu.apps.plan_starts("app1", ReplicaStart(ready_after=None))  # the new revision does not get ready
    second = create(image="img:2")
    name2 = second.properties.latest_revision_name
    assert name2 != name1
    assert second.properties.latest_ready_revision_name == name1
    assert second.properties.running_status == "Progressing"
    revisions = {r.name: r for r in aca.container_apps_revisions.list_revisions(fg.resource_group, "app1")}
    assert revisions[name1].properties.active and revisions[name1].properties.traffic_weight == 100
    assert revisions[name2].properties.running_state == "Processing"
    assert revisions[name2].properties.provisioning_state == "Provisioning"
    assert revisions[name2].properties.template.containers[0].image == "img:2"
    # meanwhile the old revision serves
    assert httpx.get(emu.apps.ingress_url("app1") + "/ready", verify=emu.ssl_context()).status_code == 200

    emu.apps.set_ready("app1")
    app = aca.container_apps.get(fg.resource_group, "app1")
    assert (app.properties.latest_ready_revision_name, app.properties.running_status) == (name2, "Running")
    old = aca.container_apps_revisions.get_revision(fg.resource_group, "app1", name1)
    assert (old.properties.active, old.properties.running_state, old.properties.replicas) == (False, "Stopped", 0)

    # back to the first template: a new revision all the same, and an explicit suffix is used as given
    assert create().properties.latest_revision_name not in (name1, name2)
    assert create(revisionSuffix="v9").properties.latest_revision_name == "app1--v9"


def test_revisions_are_listed_in_pages(emu, fg, aca, create):
    emu.apps.revisions_page_size = 2
    for i in range(5):
        create(image=f"img:{i}")
    names = [r.name for r in aca.container_apps_revisions.list_revisions(fg.resource_group, "app1")]
    assert len(names) == 5 and len(set(names)) == 5
    lists = [r for r in emu.requests_matching("GET", "*/containerApps/app1/revisions")]
    assert len(lists) == 3 and lists[1].query["$skiptoken"] == "2"
    assert [r["name"] for r in emu.revisions(fg.rg_id + "/providers/Microsoft.App/containerApps/app1")] == names


def test_restart_replaces_the_replicas_and_needs_an_active_revision(emu, fg, aca, create, cred):
    app = create()
    rev = app.properties.latest_revision_name
    before = aca.container_apps_revision_replicas.list_replicas(fg.resource_group, "app1", rev).value
    assert len(before) == 1
    emu.apps.plan_starts("app1", ReplicaStart(ready_after=0.3, logs=("loading the model",)))
    assert aca.container_apps_revisions.restart_revision(fg.resource_group, "app1", rev) is None
    restart = emu.requests_matching("POST", "*/revisions/*/restart")[0]
    assert restart.status == 200 and restart.is_write
    after = aca.container_apps_revision_replicas.list_replicas(fg.resource_group, "app1", rev).value
    assert [r.name for r in after] != [r.name for r in before]
    container = after[0].properties.containers[0]
    assert (container.ready, container.started, container.running_state) == (False, True, "Running")
    assert aca.container_apps_revisions.get_revision(fg.resource_group, "app1", rev).properties.running_state \
        == "Processing"
    time.sleep(0.35)
    replica = aca.container_apps_revision_replicas.get_replica(fg.resource_group, "app1", rev, after[0].name)
    assert replica.properties.containers[0].ready is True
    assert replica.properties.running_state == "Running"
    assert emu.revisions(app.id)[0]["restarts"] == 1

    # the body is a JSON object (az reads one)
    token = cred.get_token("https://management.azure.com/.default").token
    r = httpx.post(f"{emu.url}{app.id}/revisions/{rev}/restart", params={"api-version": "2026-07-01"},
                   headers={"Authorization": f"Bearer {token}"}, verify=emu.ssl_context())
    assert (r.status_code, r.json()) == (200, {})

    create(image="img:2")  # ready at once: the first revision is deactivated
    with pytest.raises(HttpResponseError) as info:
        aca.container_apps_revisions.restart_revision(fg.resource_group, "app1", rev)
    assert info.value.status_code == 400 and info.value.error.code == "RevisionOperationError"


def test_a_crash_looping_container(emu, fg, aca, create):
    emu.apps.plan_starts("app1", ReplicaStart(crash=True, crash_interval=0.05))
    app = create()
    rev = aca.container_apps_revisions.get_revision(fg.resource_group, "app1", app.properties.latest_revision_name)
    assert (rev.properties.running_state, rev.properties.health_state) == ("Failed", "Unhealthy")
    assert rev.properties.provisioning_state == "Failed"
    time.sleep(0.12)
    (replica,) = aca.container_apps_revision_replicas.list_replicas(fg.resource_group, "app1", rev.name).value
    container = replica.properties.containers[0]
    assert (container.ready, container.started, container.running_state) == (False, False, "Waiting")
    assert container.restart_count >= 2
    assert replica.properties.running_state == "NotRunning"
    assert app.properties.latest_ready_revision_name is None
    assert httpx.get(emu.apps.ingress_url("app1") + "/ready", verify=emu.ssl_context()).status_code == 503


def test_auth_token_path_is_case_insensitive_and_not_a_write(emu, fg, aca, create, cred):
    app = create()
    token = aca.container_apps.get_auth_token(fg.resource_group, "app1")
    assert token.token and token.expires.timestamp() > time.time() + 3000
    arm = cred.get_token("https://management.azure.com/.default").token
    r = httpx.post(f"{emu.url}{app.id}/getAuthToken", params={"api-version": "2026-07-01"},
                   headers={"Authorization": f"Bearer {arm}"}, verify=emu.ssl_context())
    assert r.status_code == 200
    assert r.json()["type"] == "Microsoft.App/containerApps/accesstoken"
    assert r.json()["properties"]["expires"].endswith("Z")
    assert emu.writes_to(app.id) == [w for w in emu.writes_to(app.id) if w.method == "PUT"]
    env_token = aca.managed_environments.get_auth_token(fg.resource_group, fg.environment)
    assert env_token.token != token.token


def test_console_log_stream(emu, fg, aca, create):
    emu.apps.plan_starts("app1", ReplicaStart(logs=tuple(f"line {i}" for i in range(30))))
    app = create()
    rev = app.properties.latest_revision_name
    (replica,) = aca.container_apps_revision_replicas.list_replicas(fg.resource_group, "app1", rev).value
    url = replica.properties.containers[0].log_stream_endpoint
    # the endpoint is the one az builds from eventStreamEndpoint
    base = app.properties.event_stream_endpoint.split("/subscriptions/")[0]
    assert url == (f"{base}/subscriptions/{fg.subscription_id}/resourceGroups/{fg.resource_group}/containerApps/"
                   f"app1/revisions/{rev}/replicas/{replica.name}/containers/inference/logstream")
    token = token_for(aca, fg)

    lines = stream_with_opening(emu, url, token, follow=False, tailLines=3, output="json")
    opening = [json.loads(line) for line in lines[:2]]
    assert [o["Log"] for o in opening] == [
        "Connecting to the container 'inference'...",
        f"Successfully Connected to container: 'inference' [Revision: '{rev}', Replica: '{replica.name}']"]
    # stamped at connect time, without the history's UTC offset; .NET's fraction has no trailing zeros
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,6}[1-9])?", o["TimeStamp"]) for o in opening)
    assert [json.loads(line)["Log"] for line in lines[2:]] == ["line 27", "line 28", "line 29"]
    text = stream_with_opening(emu, url, token, follow=False, tailLines=0, output="text")
    assert re.fullmatch(r"\S+  Connecting to the container 'inference'\.\.\.", text[0]) and len(text) == 2
    assert len(stream_lines(emu, url, token, follow=False)) == 20  # tailLines left out
    assert stream_lines(emu, url, token, follow=False, tailLines=2, output="text") == ["line 28", "line 29"]

    emu.apps.log("app1", 'said "hi" + <ok> \x1b[0m')
    raw = stream_lines(emu, url, token, follow=False, tailLines=1)[0]
    assert '\\u0022hi\\u0022 \\u002B \\u003Cok\\u003E \\u001B[0m' in raw  # .NET-style escapes, as az expects
    assert json.loads(raw)["Log"] == 'said "hi" + <ok> \x1b[0m'
    assert json.loads(raw)["TimeStamp"].endswith("+00:00")

    for bad in ({}, {"Authorization": "Bearer nope"},
                {"Authorization": "Bearer " + emu.credential().get_token(
                    "https://management.azure.com/.default").token}):
        assert httpx.get(url, headers=bad, verify=emu.ssl_context()).status_code == 401
    create(name="app2")
    other = token_for(aca, fg, "app2")
    assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}, verify=emu.ssl_context()).status_code == 401


def test_follow_heartbeat_and_drop(emu, fg, aca, create):
    app = create()
    rev = app.properties.latest_revision_name
    (replica,) = aca.container_apps_revision_replicas.list_replicas(fg.resource_group, "app1", rev).value
    url = replica.properties.containers[0].log_stream_endpoint
    token = token_for(aca, fg)
    emu.apps.stream.heartbeat = 0.15
    emu.apps.stream.max_seconds = 0.5
    threading.Timer(0.05, lambda: emu.apps.log("app1", "new line")).start()
    t0 = time.perf_counter()
    lines = [json.loads(line)["Log"] for line in stream_lines(emu, url, token, follow=True, tailLines=0)]
    assert 0.45 <= time.perf_counter() - t0 < 2
    assert lines[0] == "new line"
    assert lines[1:] and set(lines[1:]) == {"No logs since last 0.15 seconds"}

    emu.apps.stream.max_seconds, emu.apps.stream.max_lines, emu.apps.stream.drop = None, 2, "abort"
    emu.apps.log("app1", "a", "b", "c")
    got = []
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("GET", url, params={"follow": "true", "tailLines": "5"}, verify=emu.ssl_context(),
                          headers={"Authorization": f"Bearer {token}"}) as response:
            got.extend(response.iter_lines())
    assert [json.loads(line)["Log"] for line in got[2:]] == ["new line", "a"]  # the opening lines do not count

    # a restart takes the replica away: its stream ends, the client reconnects to the new replica
    emu.apps.stream.max_lines, emu.apps.stream.drop = None, "close"
    threading.Timer(0.1, lambda: aca.container_apps_revisions.restart_revision(fg.resource_group, "app1",
                                                                                rev)).start()
    t0 = time.perf_counter()
    stream_lines(emu, url, token, follow=True, tailLines=0)
    assert time.perf_counter() - t0 < 2
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}, verify=emu.ssl_context()).status_code == 404


def test_system_event_streams(emu, fg, aca, create):
    emu.apps.plan_starts("app1", ReplicaStart(ready_after=0.1))
    app = create()
    time.sleep(0.15)
    token = token_for(aca, fg)
    events = [json.loads(line) for line in
              stream_lines(emu, app.properties.event_stream_endpoint, token, follow=False, tailLines=50)]
    reasons = [e["Reason"] for e in events]
    for reason in ("AssigningReplica", "PulledImage", "ContainerStarted", "RevisionReady"):
        assert reason in reasons
    assert {e["ContainerAppName"] for e in events} == {"app1"}
    assert events[0]["TimeStamp"].endswith(" +0000 UTC") and events[0]["EventSource"] == "ContainerAppController"
    opening = [json.loads(line) for line in
               stream_with_opening(emu, app.properties.event_stream_endpoint, token, follow=False, tailLines=0)]
    assert [(o["Reason"], o["Msg"], o["ContainerAppName"]) for o in opening] == [
        ("StartingGettingEvents", "Connecting to the events collector...", None),
        ("ConnectedToEventsServer", "Successfully connected to events server", None)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", o["TimeStamp"]) for o in opening)
    emu.apps.event("app1", "ProbeFailed", "Probe of Readiness failed", type="Warning")
    env = aca.managed_environments.get(fg.resource_group, fg.environment)
    env_token = aca.managed_environments.get_auth_token(fg.resource_group, fg.environment).token
    env_events = [json.loads(line) for line in
                  stream_lines(emu, env.properties.event_stream_endpoint, env_token, follow=False, tailLines=1)]
    assert env_events[0]["Reason"] == "ProbeFailed" and env_events[0]["Type"] == "Warning"
    assert httpx.get(env.properties.event_stream_endpoint, headers={"Authorization": f"Bearer {token}"},
                     verify=emu.ssl_context()).status_code == 401


def test_ingress(emu, fg, aca, create):
    emu.apps.plan_starts("app1", ReplicaStart(ready_after=None))  # not ready until the test says so
    app = create(min_replicas=0)
    url = "https://" + app.properties.configuration.ingress.fqdn
    ready = httpx.get(url + "/ready", verify=emu.ssl_context())
    assert (ready.status_code, ready.text) == (503, "no healthy upstream")
    emu.apps.set_ready("app1")
    assert httpx.get(url + "/ready", verify=emu.ssl_context()).json()["status"] == "ready"
    assert httpx.get(url + "/v1/models", verify=emu.ssl_context()).status_code == 401
    assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"},
                     verify=emu.ssl_context()).status_code == 401
    models = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}, verify=emu.ssl_context())
    assert models.status_code == 200 and models.json()["object"] == "list"
    assert emu.requests_matching("GET", "/ready")[0].service == "ingress"

    emu.apps.scale_to_zero("app1")  # minReplicas 0: the next request starts a replica
    rev = app.properties.latest_revision_name
    assert aca.container_apps_revision_replicas.list_replicas(fg.resource_group, "app1", rev).value == []
    assert httpx.get(url + "/health", verify=emu.ssl_context()).status_code == 200
    assert len(aca.container_apps_revision_replicas.list_replicas(fg.resource_group, "app1", rev).value) == 1

    emu.apps.on_request = lambda app_name, revision, request: (
        Response(503, {"status": "loading"}) if request.path == "/ready" else None)
    assert httpx.get(url + "/ready", verify=emu.ssl_context()).status_code == 503

    aca.container_apps.begin_delete(fg.resource_group, "app1").result()
    assert httpx.get(url + "/ready", verify=emu.ssl_context()).status_code == 404


def test_deletes_are_lros_and_an_environment_with_apps_stays(emu, fg, aca, create, cred):
    app = create()
    with pytest.raises(HttpResponseError) as info:
        aca.managed_environments.begin_delete(fg.resource_group, fg.environment).result()
    assert info.value.status_code == 409 and info.value.error.code == "ManagedEnvironmentHasContainerApps"

    token = cred.get_token("https://management.azure.com/.default").token
    r = httpx.delete(f"{emu.url}{app.id}", params={"api-version": "2026-07-01"},
                     headers={"Authorization": f"Bearer {token}"}, verify=emu.ssl_context())
    assert r.status_code == 202
    assert "/operationResults/" in r.headers["Location"] and "/operationStatuses/" in r.headers["Azure-AsyncOperation"]
    aca.container_apps.begin_delete(fg.resource_group, "app1").result()
    with pytest.raises(ResourceNotFoundError):
        aca.container_apps.get(fg.resource_group, "app1")

    with pytest.raises(HttpResponseError) as info:
        aca.managed_environments.begin_delete(fg.resource_group, fg.environment).result()
    assert info.value.error.code == "ManagedEnvironmentHasContainerAppsJobs"  # the fine-tuning job
    aca.jobs.begin_delete(fg.resource_group, fg.job).result()
    poller = aca.managed_environments.begin_delete(fg.resource_group, fg.environment)
    assert emu.state.get(fg.id("environment")).provisioning_state == "ScheduledForDelete"
    poller.result()
    delete = emu.requests_matching("DELETE", "*/managedEnvironments/*")[-1]
    assert delete.status == 202
    with pytest.raises(ResourceNotFoundError):
        aca.managed_environments.get(fg.resource_group, fg.environment)


def test_the_template_is_kept_for_assertions(emu, fg, create):
    create()
    template = emu.apps.template("app1")
    container = template["containers"][0]
    assert container["command"] == ["/bin/bash", "-c", "bash /mount/.azinfer/start.sh"]
    assert {"name": "AZINFER_MOUNT", "value": "/mount"} in container["env"]
    assert template["volumes"][0]["storageName"] == fg.environment_storage
    with pytest.raises(KeyError):
        emu.apps.template("no-such-app")
