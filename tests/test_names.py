from __future__ import annotations

import pytest

from azinfer import NamingError, unique_string
from azinfer.names import check_name, default_name
from azinfer.resources import ResourceKind


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("test",), "rbgf3xv4ufgzg"),
        (("hello", "world"), "a7wkljktk6wne"),
    ],
)
def test_unique_string_matches_arm(parts: tuple[str, ...], expected: str) -> None:
    assert unique_string(*parts) == expected


def test_unique_string_is_case_sensitive_and_joins_with_dash() -> None:
    assert unique_string("Test") != unique_string("test")
    assert unique_string("hello", "world") == unique_string("hello-world")
    assert len(unique_string("x" * 1000)) == 13


def test_unique_string_needs_strings() -> None:
    with pytest.raises(TypeError):
        unique_string()
    with pytest.raises(TypeError):
        unique_string(1)  # type: ignore[arg-type]


def test_default_names_follow_the_toolkit_rule() -> None:
    rg = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    suffix = unique_string(rg)[:5]
    assert default_name(ResourceKind.STORAGE_ACCOUNT, rg) == f"aistorage{suffix}"
    assert default_name(ResourceKind.FILE_SHARE, rg) == f"aifileshare{suffix}"
    assert default_name(ResourceKind.ENVIRONMENT, rg) == f"aienv{suffix}"
    assert default_name(ResourceKind.ENVIRONMENT_STORAGE, rg) == f"aienvstorage{suffix}"
    assert default_name(ResourceKind.CONTAINER_APP, rg) == f"aiacaapp{suffix}"
    assert default_name(ResourceKind.LOG_ANALYTICS, rg) == f"ailog{suffix}"


@pytest.mark.parametrize(
    ("kind", "name", "ok"),
    [
        (ResourceKind.STORAGE_ACCOUNT, "aistorage12345", True),
        (ResourceKind.STORAGE_ACCOUNT, "AiStorage", False),
        (ResourceKind.STORAGE_ACCOUNT, "ai-storage", False),
        (ResourceKind.STORAGE_ACCOUNT, "ab", False),
        (ResourceKind.STORAGE_ACCOUNT, "a" * 25, False),
        (ResourceKind.FILE_SHARE, "my-share", True),
        (ResourceKind.FILE_SHARE, "my--share", False),
        (ResourceKind.FILE_SHARE, "-share", False),
        (ResourceKind.LOG_ANALYTICS, "My-Logs", True),
        (ResourceKind.LOG_ANALYTICS, "abc", False),
        (ResourceKind.ENVIRONMENT, "env-1", True),
        (ResourceKind.ENVIRONMENT, "1env", False),
        (ResourceKind.ENVIRONMENT, "env-", False),
        (ResourceKind.ENVIRONMENT_STORAGE, "storage1", True),
        (ResourceKind.CONTAINER_APP, "my-app", True),
        (ResourceKind.CONTAINER_APP, "My-App", False),
        (ResourceKind.CONTAINER_APP, "a" * 33, False),
    ],
)
def test_naming_rules(kind: ResourceKind, name: str, ok: bool) -> None:
    if ok:
        check_name(kind, name)
    else:
        with pytest.raises(NamingError) as info:
            check_name(kind, name, source="somewhere")
        assert info.value.name == name
        assert info.value.rule in str(info.value)
        assert "somewhere" in str(info.value)
