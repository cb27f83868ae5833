"""Renderer tests: a plan's JSON form in, exact text out."""

from __future__ import annotations

from typing import Any

import pytest

from azinfer.plan.view import format_html, format_text


def _plan(
    actions: list[str], problems: list[dict[str, str]] | None = None, warnings: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    titles = ["storage account", "container app"]
    resources = [
        {
            "resource": title.replace(" ", ""), "title": title, "type": "T", "name": f"n{i}", "armName": f"n{i}",
            "action": action, "reason": f"reason {i}", "nameSource": {"source": "default", "detail": f"rule {i}"},
        }
        for i, (title, action) in enumerate(zip(titles, actions))
    ]
    summary = {a: actions.count(a) for a in ("create", "reuse", "update")}
    return {
        "formatVersion": "2",
        "subscriptionId": {"value": "sub", "source": "argument", "detail": "subscription option"},
        "resourceGroup": {"value": "rg", "source": "argument", "detail": "resource group option"},
        "location": {"value": None, "source": "default", "detail": "resourceGroup().location, decided by ARM"},
        "finetuningJob": {"value": "job", "source": "default", "detail": "d"},
        "gpu": {"profileType": "NC24-A100", "profileName": "GPU", "serverless": False, "minReplicas": 1, "maxReplicas": 1,
                "addedToEnvironment": False, "profileTypeSource": {"source": "inventory", "detail": "env's <GPU>"}},
        "start": {"origin": "azinfer", "reason": "stock <start> replaced", "commands": ["x"], "replaced": ["y"]},
        "authentication": "apiKey",
        "resources": resources,
        "problems": problems or [],
        "warnings": warnings or [],
        "summary": summary,
        "blocked": bool(problems),
    }


HEADER = """azinfer plan: resource group 'rg'
  subscription sub (subscription option)
  location the resource group's (resourceGroup().location, decided by ARM)
  GPU NC24-A100 as workload profile 'GPU', replicas 1 to 1; authentication: apiKey
      GPU type from inventory: env's <GPU>
  start: azinfer's server (/health, /ready, API key)
      because stock <start> replaced

Resource actions are indicated with the following symbols:
"""

CASES = {
    "create and update": (
        _plan(["create", "update"]),
        HEADER + """  + create
  ~ update

  + storage account 'n0' will be created
      because reason 0
      name from default: rule 0

  ~ container app 'n1' will be updated
      because reason 1
      name from default: rule 1

Plan: 1 to create, 0 to reuse, 1 to update.
""",
    ),
    "reuse with a problem and a warning": (
        _plan(["reuse", "create"], [{"code": "c", "resource": "environment", "message": "no GPU"}],
              [{"code": "coldStart", "message": "cold"}]),
        HEADER + """  + create
  = reuse (referenced as existing, never written)

  = storage account 'n0' will be reused
      because reason 0
      name from default: rule 0

  + container app 'n1' will be created
      because reason 1
      name from default: rule 1

Problems (1):
  x environment: no GPU

Warnings (1):
  ! cold

Plan: 1 to create, 1 to reuse, 0 to update.
The plan is blocked: fix the problems above and plan again.
""",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_text(case: str) -> None:
    plan, expected = CASES[case]
    assert format_text(plan) == expected


def test_color_only_when_asked() -> None:
    plan = _plan(["create", "update"])
    assert "\x1b[" not in format_text(plan)
    colored = format_text(plan, color=True)
    assert "\x1b[32m+ storage account 'n0' will be created\x1b[0m" in colored


def test_html_escapes_and_shows_every_resource() -> None:
    plan = _plan(["create", "reuse"], [{"code": "c", "resource": "environment", "message": "<b>bad</b>"}],
                 [{"code": "w", "message": "<i>warm</i>"}])
    page = format_html(plan)
    assert "&lt;b&gt;bad&lt;/b&gt;" in page and "<b>bad</b>" not in page
    assert "&lt;i&gt;warm&lt;/i&gt;" in page and "stock &lt;start&gt; replaced" in page
    assert page.count("<tr>") == 3  # header + two resources
    assert "Blocked." in page


def test_a_start_reason_the_warnings_give_is_not_said_twice() -> None:
    plan = _plan(["create", "create"], warnings=[{"code": "startCommandReplaced", "message": "stock <start> replaced"}])
    text = format_text(plan)
    assert text.count("stock <start> replaced") == 1
