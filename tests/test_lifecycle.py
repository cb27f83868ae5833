"""deploy, status, logs, destroy against the ARM emulator (Files data plane, revisions, log stream, ingress) over HTTPS.

Every test ends by checking that nothing outside ``.azinfer/`` and the folders
deploy owns was written or deleted on any share, and that the fine-tuning
outputs the share held are as they were.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

import pytest
from azure_support import (
    DEPLOY_OWNED,
    arm_writes,
    azure_project,
    make_project,
    share_writes_outside,
)

from azinfer import ArgumentError, AzurePermissionError
from azinfer.azure import AzureProject, Event, EventKind, ReadyTimeout, SyncError, SyncInterrupted, TeardownAction
from azinfer.azure.logstream import CLOCK_SKEW, log_lines
from azinfer.errors import AzureError
from azinfer.project import INFERENCE_CONFIG
from azinfer.resources import ResourceKind
from azinfer.local.emulator import (
    ArmEmulator,
    FinetuningGroup,
    seed_finetuning_group,
    seed_finetuning_share,
)
from azinfer.local.emulator.containerapps import ReplicaStart

USER_COMMANDS = ["cd /mount/inference", "python3 ./my_server.py --port 7860"]
# What the projects of these tests mirror to the share when the start command is the user's.
MIRRORED = ("inference", "setup")
FINETUNING_OUTPUTS = ("models/", "model-cache/", "finetuning/", "dataset/")
T = TypeVar("T")


@pytest.fixture
def emu():
    with ArmEmulator.start() as emulator:
        yield emulator


@pytest.fixture
def group(emu: ArmEmulator) -> Iterator[FinetuningGroup]:
    fg = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
    outputs = {p: d for p, d in seed_finetuning_share(emu, fg).items() if p.startswith(FINETUNING_OUTPUTS)}
    yield fg
    if any(r.method == "DELETE" and r.path.endswith(f"/storageAccounts/{fg.storage_account}") for r in emu.requests):
        return
    files = emu.files(fg.storage_account, fg.file_share)
    assert {p: files.get(p) for p in outputs} == outputs


@pytest.fixture(autouse=True)
def _share_writes_stay_in_owned_folders(emu: ArmEmulator) -> Iterator[None]:
    yield
    assert share_writes_outside(emu, DEPLOY_OWNED + MIRRORED) == []


def _within(seconds: float, work: Callable[[], T]) -> T:
    """``work()`` on a thread, failing the test (not hanging it) when it takes longer than ``seconds``."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _share_writes(emu: ArmEmulator, account: str) -> list[str]:
    """Paths the data plane wrote or deleted on the account's shares (relative to the share)."""
    writes = [unquote(r.path) for r in emu.requests
              if r.method in ("PUT", "DELETE") and r.path.startswith(f"/{account}/")]
    return [path.split("/", 3)[3] if path.count("/") >= 3 else "" for path in writes]


def _user_project(tmp_path: Path, group: FinetuningGroup) -> Path:
    root = make_project(tmp_path / "project", group.subscription_id, group.resource_group,
                        {"defaultCommands": USER_COMMANDS})
    for i in range(5):
        (root / "inference" / f"m{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / "inference" / f"m{i}.py").write_text(f"print({i})\n")
    (root / "setup").mkdir()
    (root / "setup" / "requirements.txt").write_text("fastapi\n")
    for junk in (".git/config", ".venv/pyvenv.cfg", "inference/__pycache__/m0.cpython-311.pyc",
                 "models/local/adapter_config.json", "model-cache/x/config.json"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("junk")
    return root


def test_provision_puts_the_server_on_the_share_before_the_app(emu: ArmEmulator, group: FinetuningGroup,
                                                               tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    azure_project(emu, root).provision()
    files = emu.files(group.storage_account, group.file_share)
    wheel = files[".azinfer/dist/CURRENT"].decode().strip()
    assert f".azinfer/dist/{wheel}" in files and ".azinfer/dist/constraints.txt" in files
    first_share_write = min(r.time for r in emu.requests if r.method == "PUT"
                            and r.path.startswith(f"/{group.storage_account}/"))
    app_put = min(r.time for r in emu.requests if r.method == "PUT" and "/deployments/" in r.path)
    assert first_share_write < app_put
    assert all(p == ".azinfer" or p.startswith(".azinfer/") for p in _share_writes(emu, group.storage_account))
    for resource_id in group.ids.values():
        assert emu.writes_to(resource_id) == [], resource_id


def test_unchanged_deploy_lists_and_reads_the_manifest_only(emu: ArmEmulator, group: FinetuningGroup,
                                                            tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    emu.clear_requests()
    result = project.deploy()
    assert result.restarted is None and result.sync.uploaded == ()
    data_plane = [r for r in emu.requests if r.path.startswith(f"/{group.storage_account}/")]
    assert [r.method for r in data_plane if r.method != "GET"] == []
    assert not [r for r in emu.requests if r.path.lower().endswith("/restart")]


def test_a_named_adapter_goes_to_its_folder_on_the_share_without_a_restart(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    adapter = tmp_path / "checkpoint-120"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    emu.clear_requests()
    result = project.deploy(adapter=adapter, adapter_name="support-v2")
    assert sorted(result.sync.uploaded) == ["models/azinfer/support-v2/adapter_config.json",
                                            "models/azinfer/support-v2/adapter_model.safetensors"]
    assert result.restarted is None  # the replicas watching the share load it
    assert not [r for r in emu.requests if r.path.lower().endswith("/restart")]
    with pytest.raises(AzureError, match="adapter name 'a.b'"):
        project.deploy(adapter=adapter, adapter_name="a.b")
    with pytest.raises(AzureError, match="--name x: name an adapter folder"):
        project.deploy_preview(adapter_name="x")


def test_a_lost_manifest_costs_one_deploy_of_md5_reads_then_is_written_back(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = _user_project(tmp_path, group)
    project = azure_project(emu, root)
    project.provision()
    emu.share(group.storage_account, group.file_share).remove(".azinfer/manifest.json")
    emu.clear_requests()
    recovered = project.deploy()
    assert recovered.sync.uploaded == () and recovered.restarted is None
    heads = [r for r in emu.requests if r.service == "file" and r.method == "HEAD"]
    assert len(heads) == recovered.sync.unchanged > 0  # each file's Content-MD5 asked once
    assert ".azinfer/manifest.json" in emu.files(group.storage_account, group.file_share)
    emu.clear_requests()
    assert project.deploy().sync.uploaded == ()
    methods = {r.method for r in emu.requests if r.service == "file"}
    assert methods == {"GET"}  # the listings and the manifest: no HEAD, no write


def test_user_command_mirrors_the_project_by_content(emu: ArmEmulator, group: FinetuningGroup,
                                                     tmp_path: Path) -> None:
    root = _user_project(tmp_path, group)
    project = azure_project(emu, root)
    project.provision()
    files = emu.files(group.storage_account, group.file_share)
    assert {"inference/m0.py", "setup/requirements.txt"} <= set(files)
    assert not [p for p in files if p.startswith((".git/", ".venv/", "models/local/", "model-cache/x/", "infra/"))
                or "__pycache__" in p]
    (root / "inference" / "m3.py").write_text("print('changed')\n")
    (root / "inference" / "m4.py").unlink()
    emu.clear_requests()
    stages: list[str] = []
    sent: list[tuple[str, int]] = []
    events: list[Event] = []
    result = project.deploy(delete=True, wait=False, on_event=events.append)
    stages += [e.message for e in events if e.kind is EventKind.STAGE]
    sent += [(e.path, e.sent) for e in events if e.kind is EventKind.BYTES]
    assert result.sync.uploaded == ("inference/m3.py",) and result.sync.deleted == ("inference/m4.py",)
    # Progress in Python: each file announced (0 bytes) then its bytes; the stages in words.
    assert sent[0] == ("inference/m3.py", 0) and sum(n for _, n in sent) == len(b"print('changed')\n")
    assert stages[0].startswith("syncing to file share") and stages[1].startswith("uploaded 1 file(s)")
    assert stages[-1].startswith("restarting revision")
    files = emu.files(group.storage_account, group.file_share)
    assert files["inference/m3.py"] == b"print('changed')\n" and "inference/m4.py" not in files
    assert result.restarted is not None


def _provisioned_user_project(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> tuple[Path, AzureProject]:
    root = _user_project(tmp_path, group)
    project = azure_project(emu, root)
    project.provision()
    return root, project


def test_names_azure_files_refuses_are_named_before_anything_is_uploaded(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root, project = _provisioned_user_project(emu, group, tmp_path)
    (root / "inference" / "new.py").write_text("print('new')\n")
    for name in ("a\\b.py", "CON", "trailing.", "bell\x07.py"):
        (root / "inference" / name).write_text("x")
    emu.clear_requests()
    with pytest.raises(SyncError) as refused:
        project.deploy(wait=False)
    message = str(refused.value)
    assert message.startswith("4 file(s) have names Azure Files does not take: ")
    assert "inference/a\\b.py (holds '\\\\')" in message and "inference/CON ('CON' is a reserved name)" in message
    assert "inference/trailing. ('trailing.' ends with a dot or a space)" in message
    assert "inference/bell\\x07.py (holds '\\x07')" in message
    assert [r for r in emu.requests if r.service == "file" and r.is_write] == []


def _edit_manifest(emu: ArmEmulator, group: FinetuningGroup, edit: Callable[[dict[str, dict[str, object]]], None]
                   ) -> None:
    """Change the manifest's entries on the share as a person (or another tool) would: by hand."""
    share = emu.share(group.storage_account, group.file_share)
    document = json.loads(share.file_bytes()[".azinfer/manifest.json"])
    edit(document["files"])
    share.put(".azinfer/manifest.json", json.dumps(document))


def _entry_for(template: dict[str, object], data: bytes, etag: str) -> dict[str, object]:
    return {**template, "md5": base64.b64encode(hashlib.md5(data).digest()).decode(), "size": len(data),
            "etag": etag}


def test_deploy_delete_leaves_files_an_edited_manifest_claims(emu: ArmEmulator, group: FinetuningGroup,
                                                              tmp_path: Path) -> None:
    root, project = _provisioned_user_project(emu, group, tmp_path)
    share = emu.share(group.storage_account, group.file_share)
    theirs = b"# the toolkit's own\n"
    entry = share.put("inference/toolkit.py", theirs, content_md5=True)
    _edit_manifest(emu, group, lambda files: files.__setitem__(
        "inference/toolkit.py", _entry_for(files["inference/m0.py"], theirs, entry.etag)))
    (root / "inference" / "m4.py").unlink()
    summary = project.deploy_preview(delete=True).to_text()
    result = project.deploy(delete=True, wait=False)
    assert emu.files(group.storage_account, group.file_share)["inference/toolkit.py"] == theirs
    assert summary.startswith("warning: .azinfer/manifest.json on the share is not one azinfer wrote")
    # m4.py is left too: with the manifest set aside, azinfer cannot prove it uploaded it.
    assert result.sync.deleted == ()
    assert project.deploy_preview(delete=True).plan.warnings == ()  # rebuilt


def test_a_manifest_carrying_a_tampered_copys_etag_does_not_skip_the_file(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root, project = _provisioned_user_project(emu, group, tmp_path)
    share = emu.share(group.storage_account, group.file_share)
    tampered = b"print(9)\n"  # the size of the local file
    entry = share.put("inference/m0.py", tampered, content_md5=True)
    _edit_manifest(emu, group, lambda files: files["inference/m0.py"].__setitem__("etag", entry.etag))
    result = project.deploy(wait=False)
    assert "inference/m0.py" in result.sync.uploaded
    assert emu.files(group.storage_account, group.file_share)["inference/m0.py"] == b"print(0)\n"


@pytest.mark.parametrize("manifest", [b"[]", b'{"version": 1, "files": {"inference/m0.py": 1}}', b"\xff{",
                                      b'{"version": 2, "files": {}, "mac": null}'])
def test_a_malformed_manifest_is_rebuilt_with_a_warning(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path,
                                                        manifest: bytes) -> None:
    root, project = _provisioned_user_project(emu, group, tmp_path)
    emu.share(group.storage_account, group.file_share).put(".azinfer/manifest.json", manifest)
    assert "is not one azinfer wrote" in project.deploy_preview().to_text()
    result = project.deploy(wait=False)
    assert result.sync.uploaded == () and result.sync.unchanged > 0  # recognised by their Content-MD5
    assert project.deploy_preview().plan.warnings == ()


def test_destroy_keeps_a_storage_account_holding_what_deploy_did_not_upload(emu: ArmEmulator, tmp_path: Path) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-new", "westus3")
    root = make_project(tmp_path, emu.subscription_id, "rg-new", {"defaultCommands": USER_COMMANDS})
    (root / "inference").mkdir()
    (root / "inference" / "serve.py").write_text("print('serving')\n")
    project = azure_project(emu, root)
    project.provision()
    account, share_name = project.config().storage_account_name or "", project.config().file_share_name or ""
    share = emu.share(account, share_name)
    share.put("inference/notes.txt", "mine: in a folder the manifest names")
    changed = share.files["inference/serve.py"]
    changed.data[:] = b"print('edited')\n"  # written in place: the Content-MD5 azinfer set stays
    changed.touch()
    result = project.destroy()
    account_item = {i.kind: i for i in result.plan.items}[ResourceKind.STORAGE_ACCOUNT]
    assert account_item.action is TeardownAction.KEEP
    assert f"{share_name}/inference/notes.txt" in account_item.reason
    assert f"{share_name}/inference/serve.py" in account_item.reason
    assert set(emu.files(account, share_name)) >= {"inference/notes.txt", "inference/serve.py"}
    assert ResourceKind.STORAGE_ACCOUNT not in [i.kind for i in result.deleted]


def test_restart_waits_for_the_new_replica_and_ready(emu: ArmEmulator, group: FinetuningGroup,
                                                     tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    emu.apps.plan_starts(f"aiacaapp{group.suffix}", ReplicaStart(ready_after=0.3))
    stages: list[str] = []
    result = project.deploy(restart=True, on_event=lambda e: stages.append(e.message) if e.kind is EventKind.STAGE else None)
    assert result.revision is not None and result.revision.running_state == "Running"
    assert any(s.startswith("restarting revision") for s in stages)
    assert stages[-1] == "the endpoint answers /ready"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A plain-HTTP listener that records the Authorization header of every request and answers 200."""

    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_api_key_goes_only_to_the_endpoint_arm_reports(emu: ArmEmulator, group: FinetuningGroup,
                                                            tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config_path = root / INFERENCE_CONFIG
        for edited in (f"http://127.0.0.1:{server.server_address[1]}", f"127.0.0.1:{server.server_address[1]}"):
            config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "ACA_APP_ENDPOINT": edited}))
            result = _within(60, lambda: project.deploy(restart=True))
            assert _Recorder.seen == []  # the key never reached the edited endpoint
            assert result.revision is not None and result.endpoint is not None
            assert result.endpoint.startswith("https://") and result.endpoint != f"https://{edited}"
            assert project.status().ready is True
        from azinfer.azure.app import check_ready

        assert check_ready(f"http://127.0.0.1:{server.server_address[1]}", "secret") == (
            False, f"http://127.0.0.1:{server.server_address[1]} is not an https:// URL: the API key is not sent there")
        assert _Recorder.seen == []
    finally:
        server.shutdown()
        server.server_close()


def test_a_restart_that_never_gets_ready_names_the_state_and_the_logs(emu: ArmEmulator, group: FinetuningGroup,
                                                                      tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.plan_starts(app, ReplicaStart(ready_after=None, logs=("loading model", "CUDA out of memory")))
    with pytest.raises(ReadyTimeout) as caught:
        project.deploy(restart=True, timeout=1.0)
    message = str(caught.value)
    assert "did not get ready within 1 s" in message and "revision" in message
    assert "the container ran out of memory (the model does not fit): choose a larger GPU profile" in message
    assert "CUDA out of memory" in message
    emu.apps.set_ready(app)
    assert project.deploy(restart=True).revision is not None  # the next run converges


def test_missing_app_fails_before_any_upload(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    azure_project(emu, root).provision()
    config = json.loads((root / INFERENCE_CONFIG).read_text())
    (root / INFERENCE_CONFIG).write_text(json.dumps({**config, "ACA_APP_NAME": "nope"}))
    emu.clear_requests()
    with pytest.raises(AzureError, match="container app 'nope' does not exist"):
        azure_project(emu, root).deploy()
    assert _share_writes(emu, group.storage_account) == []


def test_a_key_that_cannot_be_read_or_is_refused(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    emu.faults.http_error(403, method="POST", path="*/listKeys", count=1)
    with pytest.raises(AzurePermissionError, match="Storage Account Contributor"):
        project.deploy(restart=True)
    emu.faults.http_error(403, path=f"/{group.storage_account}/*", code="AuthenticationFailed", count=None)
    with pytest.raises(SyncError, match="refused the storage account key"):
        project.deploy(restart=True)


def test_a_file_that_vanishes_mid_sync_then_the_next_run_converges(emu: ArmEmulator, group: FinetuningGroup,
                                                                    tmp_path: Path) -> None:
    root, project = _provisioned_user_project(emu, group, tmp_path)
    for i in range(5):
        (root / "inference" / f"m{i}.py").write_text(f"print('v2', {i})\n")

    def vanish(_summary: object) -> bool:
        (root / "inference" / "m2.py").unlink()
        return True

    with pytest.raises(SyncError, match="m2.py"):
        project.deploy(confirm=vanish, wait=False)
    result = project.deploy(wait=False)
    files = emu.files(group.storage_account, group.file_share)
    assert all(files[f"inference/m{i}.py"] == f"print('v2', {i})\n".encode() for i in (0, 1, 3, 4))
    assert "inference/m2.py" not in result.sync.uploaded


def test_ctrl_c_mid_upload_then_the_next_run_uploads_the_rest(emu: ArmEmulator, group: FinetuningGroup,
                                                              tmp_path: Path) -> None:
    root, project = _provisioned_user_project(emu, group, tmp_path)
    for i in range(5):
        (root / "inference" / f"m{i}.py").write_text("x" * 10_000 + str(i))
    started: list[str] = []

    def interrupt(event: Event) -> None:
        if event.kind is not EventKind.BYTES:
            return
        started.append(event.path)
        if len(started) == 3:
            raise KeyboardInterrupt

    with pytest.raises(SyncInterrupted, match="run deploy again"):
        project.deploy(on_event=interrupt, wait=False)
    project.deploy(wait=False)
    files = emu.files(group.storage_account, group.file_share)
    assert all(files[f"inference/m{i}.py"] == ("x" * 10_000 + str(i)).encode() for i in range(5))
    assert project.deploy(wait=False).sync.uploaded == ()


def test_status_has_json_and_html(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    status = project.status()
    data = status.to_json()
    assert data["ready"] is True and data["workload_profile"] == "GPU" and data["revision"]["replicas"]
    assert "<table>" in status._repr_html_() and "ready" in status.to_text()


def test_logs_tail(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.log(app, "model loaded", "serving on 7860")
    assert [line.split(" ", 1)[1] for line in project.logs(tail=2)] == ["model loaded", "serving on 7860"]
    with pytest.raises(ArgumentError, match=r"AzureProject.logs\(\): tail: expected an int from 0 to 300, got int 301"):
        project.logs(tail=301)


def _text(line: str) -> str:
    return line.split(" ", 1)[1]


def test_logs_follow_reconnects_when_the_stream_drops_without_repeating_lines(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.log(app, "old", "loaded", "loaded")  # one line twice: both shown, neither again after a drop
    emu.apps.stream.max_seconds, emu.apps.stream.drop = 0.4, "abort"  # the connection breaks mid-body
    emu.faults.latency(0.25, path="*/logstream")  # reconnecting takes a while: lines are logged meanwhile
    wanted = [f"line {i}" for i in range(30)]

    def write() -> None:
        for text in wanted:
            time.sleep(0.05)
            emu.apps.log(app, text)

    reconnects: list[str] = []

    def follow() -> list[str]:
        seen = []
        for line in project.logs(follow=True, tail=2, on_event=lambda e: reconnects.append(e.message)):
            seen.append(_text(line))
            if len(seen) == 2:  # the history is in: the app goes on logging
                threading.Thread(target=write, daemon=True).start()
            if seen[-1] == wanted[-1]:
                return seen
        return seen

    assert _within(30, follow) == ["loaded", "loaded", *wanted]
    assert len(reconnects) >= 2
    assert "the stream dropped (RemoteProtocolError); reconnecting" in reconnects


def test_logs_follow_with_no_tail_keeps_what_is_logged_while_it_reconnects(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    """``--tail 0`` of a quiet app: the stream drops before any line, and nothing logged meanwhile is lost."""
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.log(app, "old history", "more old history")
    time.sleep(CLOCK_SKEW.total_seconds() + 0.1)  # older than the skew allowed for: never shown
    emu.apps.stream.max_seconds, emu.apps.stream.drop = 0.3, "abort"
    emu.faults.latency(0.25, path="*/logstream")
    wanted = [f"line {i}" for i in range(12)]
    reconnects: list[str] = []

    def write() -> None:
        deadline = time.monotonic() + 30
        while not reconnects and time.monotonic() < deadline:  # the first stream dropped before a line was logged
            time.sleep(0.01)
        for text in wanted:
            time.sleep(0.05)
            emu.apps.log(app, text)

    def follow() -> list[str]:
        threading.Thread(target=write, daemon=True).start()
        seen = []
        for line in project.logs(follow=True, tail=0, on_event=lambda e: reconnects.append(e.message)):
            seen.append(_text(line))
            if seen[-1] == wanted[-1]:
                return seen
        return seen

    assert _within(30, follow) == wanted
    assert reconnects


def test_logs_follow_goes_on_with_the_new_replica_after_a_restart(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.log(app, "before restart")
    emu.apps.plan_starts(app, ReplicaStart(logs=("loading model",)))
    reconnects: list[str] = []

    def restart_then_log() -> None:
        project.deploy(restart=True)  # the old replica goes away, and its stream with it
        emu.apps.log(app, "after restart")

    def follow() -> list[str]:
        seen = []
        for line in project.logs(follow=True, tail=1, on_event=lambda e: reconnects.append(e.message)):
            seen.append(_text(line))
            if seen == ["before restart"]:  # the stream is open: now restart
                threading.Thread(target=restart_then_log, daemon=True).start()
            if seen[-1] == "after restart":
                return seen
        return seen

    assert _within(30, follow) == ["before restart", "loading model", "after restart"]
    assert reconnects[0] == "the stream ended; reconnecting"


def test_logs_follow_reopens_a_stream_that_goes_silent(emu: ArmEmulator, group: FinetuningGroup,
                                                       tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.stream.heartbeat, emu.apps.stream.max_seconds = 3600, None  # open, and nothing comes
    emu.apps.log(app, "first")
    reconnects: list[str] = []
    lines = log_lines(project.clients, group.resource_group, app, follow=True, tail=1, verify=project.verify,
                      reconnect_delay=0.01, idle_timeout=0.3, on_reconnect=reconnects.append)
    assert _text(_within(10, lambda: next(lines))) == "first"
    threading.Timer(1.0, emu.apps.log, (app, "second")).start()
    assert _text(_within(10, lambda: next(lines))) == "second"
    lines.close()
    assert reconnects and reconnects[0] == "no line for 0.3 s; reconnecting"


def test_logs_of_a_deleted_app_end_the_follow(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.log(app, "last words")

    def follow() -> list[str]:
        seen = []
        for line in project.logs(follow=True, tail=1):
            seen.append(_text(line))
            project.clients.apps.container_apps.begin_delete(group.resource_group, app).result()
        return seen

    with pytest.raises(AzureError, match="does not exist"):
        _within(30, follow)


def test_destroy_deletes_only_the_app_in_a_finetuning_group(emu: ArmEmulator, group: FinetuningGroup,
                                                            tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    config_path = root / INFERENCE_CONFIG
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "COMMANDS": ["keep me"]}))
    result = project.destroy()
    assert [i.kind for i in result.deleted] == [ResourceKind.CONTAINER_APP]
    assert {i.kind: i.action for i in result.plan.items}[ResourceKind.FILE_SHARE] is TeardownAction.KEEP
    for resource_id in group.ids.values():
        assert emu.writes_to(resource_id) == [], resource_id
    config = json.loads(config_path.read_text())
    assert config["COMMANDS"] == ["keep me"] and config["ACA_APP_NAME"] is None
    assert project.destroy().deleted == ()  # a second run finds nothing


def test_destroy_of_an_all_new_endpoint_removes_everything(emu: ArmEmulator, tmp_path: Path) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-new", "westus3")
    root = make_project(tmp_path, emu.subscription_id, "rg-new")
    project = azure_project(emu, root)
    project.provision()
    config = project.config()
    # What the server installs from the wheel deploy uploaded is azinfer's too.
    emu.share(config.storage_account_name or "", config.file_share_name or "").put(
        ".azinfer/env/0.1.0-abc/bin/python", "#!")
    result = project.destroy()
    assert [i.kind for i in result.deleted] == [ResourceKind.CONTAINER_APP, ResourceKind.ENVIRONMENT,
                                                 ResourceKind.LOG_ANALYTICS, ResourceKind.STORAGE_ACCOUNT]
    assert project.destroy().deleted == ()
    assert not [r for r in arm_writes(emu) if r.method == "DELETE" and "rg-new" not in r.path]


def _own_app(emu: ArmEmulator, group: FinetuningGroup) -> str:
    """A container app the user made before azinfer ran, with the name azinfer would give its own."""
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    name = f"aiacaapp{group.suffix}"
    apps = ContainerAppsAPIClient(emu.credential(), emu.subscription_id, **emu.client_kwargs())
    apps.container_apps.begin_create_or_update(group.resource_group, name, {
        "location": group.location, "tags": {"owner": "me"},
        "properties": {"managedEnvironmentId": group.id("environment"), "workloadProfileName": "GPU",
                       "configuration": {"ingress": {"external": True, "targetPort": 80}},
                       "template": {"containers": [{"name": "mine", "image": "nginx"}]}},
    }).result()
    return name


def test_destroy_keeps_an_app_that_existed_before_and_was_only_updated(emu: ArmEmulator, group: FinetuningGroup,
                                                                        tmp_path: Path) -> None:
    name = _own_app(emu, group)
    project = azure_project(emu, make_project(tmp_path, group.subscription_id, group.resource_group))
    assert project.provision().plan.action(ResourceKind.CONTAINER_APP).value == "update"
    app_id = f"{group.rg_id}/providers/Microsoft.App/containerApps/{name}"
    assert emu.state.get(app_id).input["tags"] == {"owner": "me"}  # the update added no tag of azinfer's
    result = project.destroy()
    assert result.deleted == ()
    assert "azinfer did not create it (no azinfer-created tag" in \
        {i.kind: i for i in result.plan.items}[ResourceKind.CONTAINER_APP].reason
    assert emu.state.get(app_id) is not None


@pytest.mark.parametrize("record", [None, "True", "yes\x1b[2K"])
def test_an_edited_creation_record_keeps_the_resource(emu: ArmEmulator, tmp_path: Path, record: str | None) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-new", "westus3")
    project = azure_project(emu, make_project(tmp_path, emu.subscription_id, "rg-new"))
    project.provision()
    app = next(iter(emu.state.list(f"/subscriptions/{emu.subscription_id}/", "Microsoft.App/containerApps")))
    tags = {k: v for k, v in app.input["tags"].items() if k != "azinfer-created"}
    app.input["tags"] = tags if record is None else {**tags, "azinfer-created": record}
    plan = project.destroy_plan()
    item = {i.kind: i for i in plan.items}[ResourceKind.CONTAINER_APP]
    assert item.action is TeardownAction.KEEP
    assert "\x1b" not in plan.to_text()
    # Its environment still runs it, so that stays too.
    assert {i.kind: i.action for i in plan.items}[ResourceKind.ENVIRONMENT] is TeardownAction.KEEP



DOCKER_HUB_429 = ("failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/"
                  "vllm/vllm-openai/manifests/v0.32.0-cu129: 429 Too Many Requests - Server message: toomanyrequests: "
                  "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading")


def test_a_throttled_image_pull_ends_the_wait_and_status_names_the_fix(emu: ArmEmulator, group: FinetuningGroup,
                                                                       tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.plan_starts(app, ReplicaStart(pull_error=DOCKER_HUB_429), ReplicaStart(pull_error=DOCKER_HUB_429))
    started = time.monotonic()
    with pytest.raises(ReadyTimeout) as caught:
        project.deploy(restart=True, timeout=60)
    assert time.monotonic() - started < 30  # the pull failure ends the wait: no 60 s of polling
    assert str(caught.value).startswith("the endpoint cannot get ready: the image pull is throttled by the registry")
    before = len(emu.requests)
    status = project.status()
    assert any(r.path.endswith("/eventstream") for r in emu.requests[before:])  # it read the system log
    assert status.ready is False and status.diagnosis is not None
    assert status.diagnosis.startswith("the image pull is throttled") and "az acr import" in status.diagnosis
    assert "diagnosis" in status.to_text() and status.to_json()["diagnosis"] == status.diagnosis
    # The console has nothing to show: logs say why in one line instead of an empty answer.
    with pytest.raises(AzureError, match=r"^the container wrote no log lines: the image pull is throttled"):
        list(project.logs())


def test_status_of_a_crash_looping_container_quotes_its_last_line(emu: ArmEmulator, group: FinetuningGroup,
                                                                  tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    emu.apps.plan_starts(app, ReplicaStart(crash=True, logs=("azinfer: no azinfer wheel under /mount/.azinfer",)))
    with pytest.raises(ReadyTimeout):
        project.deploy(restart=True, timeout=5)
    status = project.status()
    assert status.diagnosis is not None
    assert status.diagnosis.startswith("the container exits and is restarted again and again")
    assert "no azinfer wheel under /mount/.azinfer" in status.diagnosis


def test_a_serving_endpoint_has_no_diagnosis_and_reads_no_system_log(emu: ArmEmulator, group: FinetuningGroup,
                                                                    tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    project.provision()
    before = len(emu.requests)
    status = project.status()
    assert status.ready is True and status.diagnosis is None and status.environment_state == "Succeeded"
    assert not any(r.path.endswith("/eventstream") for r in emu.requests[before:])


def test_status_during_a_first_provision_says_it_is_under_way(emu: ArmEmulator, group: FinetuningGroup,
                                                             tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    name = f"azinfer-aiacaapp{group.suffix}"
    held = emu.deployments.hold_running(group.subscription_id, group.resource_group, name)
    with pytest.raises(AzureError, match=rf"nothing is provisioned yet.*: provisioning is under way, deployment "
                                         rf"'{name}' is still Running .*'azinfer provision' attaches to it"):
        azure_project(emu, root).status()
    held.state = "Succeeded"
    with pytest.raises(AzureError, match=r"nothing is provisioned yet \(run 'azinfer up', or 'azinfer provision'\)$"):
        azure_project(emu, root).status()


def test_up_in_python_one_event_stream_and_a_smoke_test_the_endpoint_refuses(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    from azinfer.local.emulator import Response

    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    events: list[Event] = []
    result = azure_project(emu, root).up(on_event=events.append)
    # Every operation's events arrive on the one callback, up's own stages around the others'.
    operations = [e.operation.value for e in events]
    assert operations[0] == "up" and {"provision", "deploy"} <= set(operations) and operations[-1] == "up"
    assert [e.resource_name for e in events if e.kind is EventKind.RESOURCE] == [f"aiacaapp{group.suffix}"]
    assert result.smoke is not None and result.smoke.answer == "Hello from the emulated endpoint!"
    assert result.smoke.model == "emulated" and 0 <= result.smoke.first_token_seconds <= result.smoke.seconds
    assert result.endpoint is not None and result.endpoint.startswith("https://127.0.0.1:")  # ARM's ingress FQDN

    def refuse(app: str, revision: str, request: object) -> Response | None:
        if getattr(request, "method", "") == "POST":
            return Response(500, {"error": {"message": "the engine failed", "type": "server_error"}})
        return None

    emu.apps.on_request = refuse
    with pytest.raises(AzureError) as info:
        azure_project(emu, root).up()
    assert str(info.value).startswith("smoke test: POST /v1/chat/completions answered 500 ")
    assert "the engine failed" in str(info.value) and "\n" not in str(info.value)


def test_commands_after_a_provision_into_another_group_find_the_app_the_config_names(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    """provision --resource-group X writes X to the config: key, status and deploy then need no option."""
    emu.add_resource_group(group.subscription_id, "rg-inference", "westus3")
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    provisioned = azure_project(emu, root, resource_group="rg-inference").provision()
    assert provisioned.config.resource_group == "rg-inference"
    project = azure_project(emu, root)  # no option: the fine-tuning group is the default target
    assert project.api_key() == azure_project(emu, root, resource_group="rg-inference").api_key()
    assert project.status().ready is True
    assert project.deploy(restart=True).revision is not None
