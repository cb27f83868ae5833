"""The chat page in a real browser (Debian's chromium through Playwright)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import API_KEY, RunningServer
from playwright.sync_api import Page, expect


def send(page: Page, text: str) -> None:
    box = page.get_by_test_id("textbox")  # the placeholder goes after the first message
    box.fill(text)
    box.press("Enter")


def test_chat_page_streams_a_reply(phi_server: RunningServer, page: Page, tmp_path_factory: pytest.TempPathFactory) -> None:
    page.goto(phi_server.base_url + "/")
    page.get_by_label("API key").fill(API_KEY)
    send(page, "hello world")
    bot = page.locator(".message.bot").last
    expect(bot).not_to_be_empty(timeout=30_000)
    first = bot.inner_text()
    send(page, "and again")  # a second turn: the history goes with it
    expect(page.locator(".message.bot")).to_have_count(2, timeout=30_000)
    expect(page.locator(".message.bot").last).not_to_be_empty(timeout=30_000)
    assert first
    shot = Path(tmp_path_factory.getbasetemp()) / "serve-ui.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0


def test_chat_page_asks_for_the_key(phi_server: RunningServer, page: Page) -> None:
    page.goto(phi_server.base_url + "/")
    page.get_by_label("API key").fill("wrong")
    send(page, "hello world")
    expect(page.get_by_text("Enter the API key").first).to_be_visible(timeout=30_000)
    expect(page.locator(".message.bot")).to_have_count(0)
