"""The Azure Files data plane, through the official azure-storage-file-share client."""

from __future__ import annotations

import base64
import hashlib
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate

import httpx
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.fileshare import ContentSettings, ShareClient, ShareServiceClient

from azinfer.local.emulator import sharedkey
from azinfer.local.emulator.fileshare import MAX_RANGE


def _file_records(emu, method=None):
    return [r for r in emu.requests if r.service == "file" and (method is None or r.method == method)]


def test_share_url_comes_from_arm_and_the_listed_key_signs(emu, fg, share):
    assert share.url == f"{emu.file_url}/{fg.storage_account}/{fg.file_share}"
    share.get_directory_client("inference").create_directory()
    share.get_file_client("inference/app.py").upload_file(b"print('hi')\n")
    assert emu.files(fg.storage_account, fg.file_share) == {"inference/app.py": b"print('hi')\n"}
    puts = _file_records(emu, "PUT")
    assert [(r.path, r.status) for r in puts] == [
        (f"/{fg.storage_account}/{fg.file_share}/inference", 201),
        (f"/{fg.storage_account}/{fg.file_share}/inference/app.py", 201),
        (f"/{fg.storage_account}/{fg.file_share}/inference/app.py", 201),
    ]
    auth = puts[0].headers["authorization"]
    assert auth.startswith(f"SharedKey {fg.storage_account}:")
    assert all(r.headers["x-ms-version"] == "2026-10-06" for r in puts)
    assert puts[2].size == 12 and puts[2].query == {"comp": "range"}
    assert emu.file_writes(fg.storage_account, fg.file_share) == puts
    assert emu.requests_matching("PUT", service="file") == puts
    assert emu.writes_to(fg.id("file_share")) == []  # ARM writes only


def test_wrong_or_regenerated_key_is_authentication_failed(emu, fg, share, storage):
    bad = ShareClient(share.url.rsplit("/", 1)[0] + "/", fg.file_share,
                      credential=base64.b64encode(b"k" * 64).decode(), **emu.storage_client_kwargs())
    with pytest.raises(ClientAuthenticationError) as info:
        bad.get_directory_client("x").create_directory()
    assert info.value.error_code == "AuthenticationFailed"
    assert info.value.status_code == 403
    # like the service, the answer shows the string the emulator signed: the path-style resource
    assert f"/{fg.storage_account}/{fg.storage_account}/{fg.file_share}/x" in info.value.message
    assert _file_records(emu)[-1].status == 403

    storage.storage_accounts.regenerate_key(fg.resource_group, fg.storage_account, {"keyName": "key1"})
    with pytest.raises(ClientAuthenticationError):
        share.get_directory_client("y").create_directory()
    fresh = storage.storage_accounts.list_keys(fg.resource_group, fg.storage_account).keys_property[0].value
    ShareClient(share.url.rsplit("/", 1)[0] + "/", fg.file_share, credential=fresh,
                **emu.storage_client_kwargs()).get_directory_client("y").create_directory()
    assert emu.share(fg.storage_account, fg.file_share).directories() == ["y"]


def test_shared_key_refused_when_the_account_disallows_it(emu, fg, share, storage):
    storage.storage_accounts.update(fg.resource_group, fg.storage_account,
                                    {"properties": {"allowSharedKeyAccess": False}})
    with pytest.raises(HttpResponseError) as info:
        share.get_directory_client("x").create_directory()
    assert info.value.status_code == 403
    assert info.value.error_code == "KeyBasedAuthenticationNotPermitted"


def test_token_auth_with_backup_intent(emu, fg, share):
    url = share.url.rsplit("/", 1)[0] + "/"
    token_share = ShareClient(url, fg.file_share, credential=emu.credential(), token_intent="backup",
                              **emu.storage_client_kwargs())
    token_share.get_directory_client("t").create_directory()
    token_share.get_file_client("t/f.txt").upload_file(b"via token")
    assert emu.files(fg.storage_account, fg.file_share) == {"t/f.txt": b"via token"}
    rec = _file_records(emu, "PUT")[-1]
    assert rec.headers["authorization"].startswith("Bearer ")
    assert rec.headers["x-ms-file-request-intent"] == "backup"

    storage_token = emu.credential().get_token("https://storage.azure.com/.default").token
    target = f"{url}{fg.file_share}/t/f.txt"
    headers = {"Authorization": f"Bearer {storage_token}", "x-ms-version": "2026-10-06"}
    missing_intent = httpx.head(target, headers=headers, verify=emu.ssl_context())
    assert (missing_intent.status_code, missing_intent.headers["x-ms-error-code"]) == (400, "MissingRequiredHeader")
    arm_token = emu.credential().get_token("https://management.azure.com/.default").token
    wrong_audience = httpx.head(target, verify=emu.ssl_context(), headers={
        **headers, "Authorization": f"Bearer {arm_token}", "x-ms-file-request-intent": "backup"})
    assert (wrong_audience.status_code, wrong_audience.headers["x-ms-error-code"]) == (401, "InvalidAuthenticationInfo")
    anonymous = httpx.head(target, headers={"x-ms-version": "2026-10-06"}, verify=emu.ssl_context())
    assert anonymous.status_code == 401
    # share operations take a key, not a token (as on Azure)
    service = ShareServiceClient(url, credential=emu.credential(), token_intent="backup", **emu.storage_client_kwargs())
    with pytest.raises(HttpResponseError) as info:
        service.create_share("made-with-token")
    assert info.value.status_code == 403


def test_upload_goes_in_4_mib_ranges_and_the_md5_round_trips(emu, fg, share):
    data = bytes(range(256)) * (9 * 4096) + b"12345"  # 9 MiB + 5 bytes
    md5 = hashlib.md5(data).digest()
    client = share.get_file_client("big.bin")
    client.upload_file(data, content_settings=ContentSettings(content_md5=md5))
    ranges = [r for r in _file_records(emu, "PUT") if r.query.get("comp") == "range"]
    assert [r.size for r in ranges] == [MAX_RANGE, MAX_RANGE, len(data) - 2 * MAX_RANGE]
    create = next(r for r in _file_records(emu, "PUT") if r.headers.get("x-ms-type") == "file")
    assert create.headers["x-ms-content-length"] == str(len(data))
    assert create.headers["x-ms-content-md5"] == base64.b64encode(md5).decode()
    props = client.get_file_properties()
    assert props.size == len(data)
    assert bytes(props.content_settings.content_md5) == md5
    assert emu.files(fg.storage_account, fg.file_share)["big.bin"] == data
    assert client.download_file().readall() == data
    assert client.download_file(offset=4, length=6).readall() == data[4:10]

    plain = share.get_file_client("plain.txt")
    plain.upload_file(b"")
    assert plain.get_file_properties().content_settings.content_md5 is None
    assert not any(r.query.get("comp") == "range" and r.path.endswith("plain.txt") for r in _file_records(emu))
    assert plain.download_file().readall() == b""


def test_put_range_limits(emu, fg, share):
    client = share.get_file_client("r.bin")
    client.create_file(MAX_RANGE + 10)
    with pytest.raises(HttpResponseError) as info:
        client.upload_range(b"x" * (MAX_RANGE + 1), offset=0, length=MAX_RANGE + 1)
    assert (info.value.status_code, info.value.error_code) == (413, "RequestBodyTooLarge")
    with pytest.raises(HttpResponseError) as info:
        client.upload_range(b"xy", offset=MAX_RANGE + 9, length=2)
    assert (info.value.status_code, info.value.error_code) == (416, "InvalidRange")
    client.upload_range(b"abc", offset=2, length=3, validate_content=True)
    assert emu.files(fg.storage_account, fg.file_share)["r.bin"][:6] == b"\0\0abc\0"
    client.clear_range(offset=0, length=512)  # the SDK only clears whole 512-byte blocks
    assert emu.files(fg.storage_account, fg.file_share)["r.bin"][:6] == b"\0" * 6

    # a body whose MD5 is not the one sent (signed with the listed key, sent as is)
    from azinfer.local.emulator.providers import storage_keys

    account_key = storage_keys(emu.fileservice.account(fg.storage_account))["keys"][0]["value"]
    raw_path = f"/{fg.storage_account}/{fg.file_share}/r.bin"
    headers = {"content-length": "3", "content-md5": base64.b64encode(hashlib.md5(b"zzz").digest()).decode(),
               "x-ms-date": formatdate(time.time(), usegmt=True), "x-ms-range": "bytes=0-2",
               "x-ms-version": "2026-10-06", "x-ms-write": "update"}
    to_sign = sharedkey.string_to_sign("PUT", raw_path, "comp=range", headers, fg.storage_account)
    headers["authorization"] = f"SharedKey {fg.storage_account}:{sharedkey.sign(account_key, to_sign)}"
    r = httpx.put(f"{emu.file_url}{raw_path}?comp=range", content=b"abc",
                  headers=headers, verify=emu.ssl_context())
    assert (r.status_code, r.headers["x-ms-error-code"]) == (400, "Md5Mismatch")
    assert b"<Code>Md5Mismatch</Code>" in r.content


def test_list_directories_and_files_pages(emu, fg, share):
    emu.seed_files(fg.storage_account, fg.file_share, {f"d/f{i}.txt": b"x" * i for i in range(5)})
    emu.share(fg.storage_account, fg.file_share).mkdir("d/sub")
    emu.share(fg.storage_account, fg.file_share).mkdir("d/another")
    emu.clear_requests()
    items = list(share.list_directories_and_files("d", results_per_page=2))
    assert len(_file_records(emu, "GET")) == 4  # 7 entries, 2 per page
    names = [(i.name, i.is_directory) for i in items]
    assert sorted(names) == sorted([(f"f{i}.txt", False) for i in range(5)] + [("sub", True), ("another", True)])
    sizes = {i.name: i.size for i in items if not i.is_directory}
    assert sizes == {f"f{i}.txt": i for i in range(5)}
    # the second page's marker is opaque, not a file name
    marker = _file_records(emu, "GET")[1].query["marker"]
    assert marker and not marker.startswith("f")

    detailed = list(share.list_directories_and_files("d", name_starts_with="f1",
                                                     include=["timestamps", "Etag", "Attributes", "PermissionKey"],
                                                     include_extended_info=True))
    assert [i.name for i in detailed] == ["f1.txt"]
    assert detailed[0].file_id and detailed[0].last_modified and detailed[0].etag

    token = emu.credential().get_token("https://storage.azure.com/.default").token
    r = httpx.get(f"{share.url}/d", params={"restype": "directory", "comp": "list", "maxresults": "3"},
                  headers={"Authorization": f"Bearer {token}", "x-ms-version": "2026-10-06",
                           "x-ms-file-request-intent": "backup"}, verify=emu.ssl_context())
    root = ET.fromstring(r.content)
    assert root.tag == "EnumerationResults"
    assert root.attrib == {"ServiceEndpoint": f"{emu.file_url}/{fg.storage_account}/", "ShareName": fg.file_share,
                           "DirectoryPath": "d"}
    assert root.findtext("MaxResults") == "3" and root.findtext("NextMarker")
    assert [e.findtext("Name") for e in root.find("Entries")] == ["another", "f0.txt", "f1.txt"]


def test_delete_and_not_found_codes(emu, fg, share):
    emu.seed_files(fg.storage_account, fg.file_share, {"a/b/c.txt": "c"})
    with pytest.raises(ResourceExistsError) as info:
        share.get_directory_client("a/b").delete_directory()
    assert info.value.error_code == "DirectoryNotEmpty"
    share.get_file_client("a/b/c.txt").delete_file()
    assert _file_records(emu, "DELETE")[-1].status == 202
    share.get_directory_client("a/b").delete_directory()
    assert _file_records(emu, "DELETE")[-1].path.endswith("/a/b")  # the client sent a%2Fb
    assert emu.share(fg.storage_account, fg.file_share).directories() == ["a"]
    with pytest.raises(ResourceNotFoundError) as info:
        share.get_file_client("a/missing.txt").get_file_properties()
    assert info.value.error_code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        share.get_file_client("nowhere/x.txt").upload_file(b"x")
    assert info.value.error_code == "ParentNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        share.get_file_client("a/missing.txt").delete_file()
    assert info.value.error_code == "ResourceNotFound"
    with pytest.raises(ResourceExistsError) as info:
        share.get_directory_client("a").create_directory()
    assert info.value.error_code == "ResourceAlreadyExists"
    other = ShareClient(share.url.rsplit("/", 1)[0] + "/", "no-such-share",
                        credential=share.credential.account_key, **emu.storage_client_kwargs())
    with pytest.raises(ResourceNotFoundError) as info:
        other.get_directory_client("x").create_directory()
    assert info.value.error_code == "ShareNotFound"


def test_paths_are_case_insensitive_and_keep_their_case(emu, fg, share):
    share.get_directory_client("Inference").create_directory()
    share.get_directory_client("Inference/Sub").create_directory()
    share.get_file_client("inference/sub/App.py").upload_file(b"1")
    share.get_file_client("INFERENCE/SUB/app.PY").upload_file(b"22")  # the same file
    assert emu.files(fg.storage_account, fg.file_share) == {"Inference/Sub/App.py": b"22"}
    with pytest.raises(ResourceExistsError):
        share.get_directory_client("inference").create_directory()
    assert [i.name for i in share.list_directories_and_files("inference/sub")] == ["App.py"]


def test_shares_made_on_the_data_plane_appear_in_arm(emu, fg, share, storage):
    service = ShareServiceClient(share.url.rsplit("/", 1)[0] + "/", credential=share.credential.account_key,
                                 **emu.storage_client_kwargs())
    made = service.create_share("made")
    assert storage.file_shares.get(fg.resource_group, fg.storage_account, "made").name == "made"
    with pytest.raises(ResourceExistsError):
        service.create_share("made")
    made.get_file_client("x.txt").upload_file(b"x")
    assert emu.files(fg.storage_account, "made") == {"x.txt": b"x"}
    service.delete_share("made")
    with pytest.raises(ResourceNotFoundError):
        storage.file_shares.get(fg.resource_group, fg.storage_account, "made")
    # and deleting a share through ARM takes its files with it
    emu.seed_files(fg.storage_account, fg.file_share, {"keep.txt": "k"})
    storage.file_shares.delete(fg.resource_group, fg.storage_account, fg.file_share)
    with pytest.raises(KeyError):
        emu.files(fg.storage_account, fg.file_share)


def test_seeded_files_and_properties(emu, fg, share):
    emu.seed_files(fg.storage_account, fg.file_share, {"models/adapter/adapter_config.json": "{}",
                                                        "model-cache/org/model/config.json": b"{}"}, content_md5=True)
    props = share.get_file_client("models/adapter/adapter_config.json").get_file_properties()
    assert bytes(props.content_settings.content_md5) == hashlib.md5(b"{}").digest()
    assert emu.share(fg.storage_account, fg.file_share).directories() == [
        "model-cache", "model-cache/org", "model-cache/org/model", "models", "models/adapter"]
    emu.share(fg.storage_account, fg.file_share).remove("model-cache")
    assert list(emu.files(fg.storage_account, fg.file_share)) == ["models/adapter/adapter_config.json"]
    # Set File Properties clears the content settings it does not send
    client = share.get_file_client("models/adapter/adapter_config.json")
    client.set_http_headers(ContentSettings(content_type="application/json"))
    props = client.get_file_properties()
    assert props.content_settings.content_type == "application/json"
    assert props.content_settings.content_md5 is None


def test_faults_and_latency_reach_the_file_service(emu, fg, share):
    path = f"/{fg.storage_account}/{fg.file_share}/inference"
    emu.faults.http_error(503, method="PUT", path=path, count=1)
    share.get_directory_client("inference").create_directory()  # the SDK retries
    assert [r.status for r in _file_records(emu, "PUT")] == [503, 201]
    emu.faults.http_error(500, method="PUT", path=path + "/*", count=None, code="InternalError",
                          message="Injected.")
    with pytest.raises(HttpResponseError) as info:
        share.get_file_client("inference/x.txt").upload_file(b"x")
    assert info.value.error_code == "InternalError"
    emu.faults.clear()
    emu.faults.reset(method="HEAD", path=path + "/*", count=1)
    share.get_file_client("inference/y.txt").upload_file(b"y")
    assert share.get_file_client("inference/y.txt").get_file_properties().size == 1
    emu.faults.latency(0.2, path=path + "/*", count=1)
    t0 = time.perf_counter()
    share.get_file_client("inference/y.txt").get_file_properties()
    assert time.perf_counter() - t0 >= 0.2


def test_header_order_matches_the_sdk_collation(emu, fg, share):
    from azure.storage.fileshare._shared.authentication import _storage_header_sort

    names = ["x-ms-meta-ab", "x-ms-meta-a-b", "x-ms-meta-a_b", "x-ms-meta-a", "x-ms-meta-b", "x-ms-meta-a1",
             "x-ms-meta-a-", "x-ms-date", "x-ms-version", "x-ms-client-request-id", "x-ms-meta-a.b"]
    sdk_order = [k for k, _ in _storage_header_sort([(n, "") for n in names])]
    assert sorted(names, key=sharedkey.header_sort_key) == sdk_order
    assert sdk_order.index("x-ms-meta-ab") < sdk_order.index("x-ms-meta-a-b")
    # and a signed request carrying such headers verifies
    share.get_file_client("m.txt").create_file(1, metadata={"ab": "1", "a-b": "2", "a_b": "3", "a": "4"})
    assert emu.file_writes(fg.storage_account, fg.file_share)[-1].status == 201
