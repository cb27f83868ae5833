"""The chat page in a real browser (Debian's chromium through Playwright), against a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, RunningServer, running_server
from playwright.sync_api import Page, expect
from serve_model_factory import ModelShape, MountLayout, build_adapter

# Records every text the newest reply shows, so a test can tell a streamed reply from one block.
RECORD_REPLIES = """
window.replyStates = [];
new MutationObserver(() => {
  const replies = document.querySelectorAll('.msg.assistant');
  const text = replies.length ? replies[replies.length - 1].textContent : '';
  if (window.replyStates[window.replyStates.length - 1] !== text) window.replyStates.push(text);
}).observe(document.getElementById('log'), {childList: true, subtree: true, characterData: true});
"""


def enter_key(page: Page, key: str) -> None:
    page.get_by_label("API key of this endpoint").fill(key)
    page.get_by_role("button", name="Use key").click()


def settings(page: Page, max_tokens: int, temperature: float) -> None:
    page.locator("#settings summary").click()
    page.get_by_label("Max new tokens").fill(str(max_tokens))
    page.get_by_label("Temperature").fill(str(temperature))


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def finished_reply(page: Page, count: int) -> str:
    replies = page.locator(".msg.assistant")
    expect(replies).to_have_count(count, timeout=30_000)
    expect(page.locator(".msg.assistant.streaming")).to_have_count(0, timeout=30_000)
    return replies.nth(count - 1).inner_text()


def test_a_wrong_key_can_be_corrected_without_reloading(phi_server: RunningServer, page: Page) -> None:
    page.goto(phi_server.base_url + "/")
    page.evaluate("window.sameDocument = true")
    expect(page.get_by_label("Message")).to_be_disabled()
    enter_key(page, "wrong-key")
    expect(page.get_by_role("alert").filter(has_text="refused")).to_be_visible()
    expect(page.get_by_label("Message")).to_be_disabled()
    enter_key(page, API_KEY)
    expect(page.get_by_label("Message")).to_be_enabled()
    expect(page.locator("#key-panel")).to_be_hidden()
    expect(page.get_by_label("Model")).to_have_value("microsoft/Phi-3-mini-4k-instruct")
    assert page.evaluate("window.sameDocument") is True  # no reload
    page.reload()  # the key is kept for the tab: not asked again
    expect(page.get_by_label("Message")).to_be_enabled()
    expect(page.locator("#key-panel")).to_be_hidden()


def test_replies_stream_in_and_the_history_goes_with_each_turn(
    phi_server: RunningServer, page: Page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bodies: list[dict[str, Any]] = []
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/chat/completions") else None)
    page.goto(phi_server.base_url + "/")
    enter_key(page, API_KEY)
    expect(page.get_by_label("Message")).to_be_enabled()
    page.evaluate(RECORD_REPLIES)
    settings(page, max_tokens=64, temperature=0)
    send(page, "hello world")
    expect(page.locator(".msg.user")).to_have_text(["hello world"])
    first = finished_reply(page, 1)
    states = page.evaluate("window.replyStates")
    assert first and states[-1] == first
    intermediate = [s for s in states if s and s != first]
    assert len(intermediate) >= 2, states  # it grew in steps, not as one block
    assert all(first.startswith(s) for s in intermediate)
    send(page, "and again")
    finished_reply(page, 2)
    assert bodies[0]["messages"] == [{"role": "user", "content": "hello world"}]
    assert bodies[1]["messages"] == [
        {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "and again"},
    ]
    assert bodies[1]["max_tokens"] == 64 and bodies[1]["temperature"] == 0 and bodies[1]["stream"] is True
    shot = Path(tmp_path_factory.getbasetemp()) / "serve-chat-page.png"
    page.screenshot(path=str(shot), full_page=True)


def test_an_error_from_the_server_is_shown_and_the_text_kept(phi_server: RunningServer, page: Page) -> None:
    page.goto(phi_server.base_url + "/")
    enter_key(page, API_KEY)
    settings(page, max_tokens=8, temperature=5)  # out of range: 400
    send(page, "hello world")
    expect(page.get_by_role("alert").filter(has_text="temperature")).to_be_visible()
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.get_by_label("Message")).to_have_value("hello world")


def test_the_page_loads_nothing_from_elsewhere(phi_server: RunningServer, page: Page) -> None:
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(phi_server.base_url + "/")
    page.wait_for_load_state("networkidle")
    assert urls and all(u.startswith(phi_server.base_url) for u in urls)
    headers = page.request.get(phi_server.base_url + "/").headers
    assert "default-src 'none'" in headers["content-security-policy"]


def test_the_user_picks_the_base_or_an_adapter_and_the_request_names_it(
    phi_mount: MountLayout, page: Page, tmp_path: Path
) -> None:
    alpha = tmp_path / "alpha"
    build_adapter(phi_mount.model_dir, alpha, phi_mount.hub_id, ModelShape(family="phi3"), seed=2)
    bodies: list[dict[str, Any]] = []
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/chat/completions") else None)
    with running_server(mount_root=phi_mount.root, api_key=API_KEY, adapters=(f"alpha={alpha}",)) as server:
        page.goto(server.base_url + "/")
        enter_key(page, API_KEY)
        picker = page.get_by_label("Model")
        expect(picker).to_have_value(phi_mount.hub_id)
        expect(picker.locator("option")).to_have_text([phi_mount.hub_id, f"alpha (adapter on {phi_mount.hub_id})"])
        settings(page, max_tokens=8, temperature=0)
        send(page, "hello world")
        finished_reply(page, 1)
        picker.select_option("alpha")
        send(page, "hello world")
        finished_reply(page, 2)
    assert [body["model"] for body in bodies] == [phi_mount.hub_id, "alpha"]
