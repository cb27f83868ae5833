"""The Gradio chat page at ``/``: multi-turn, streamed, on the same engine as the API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI

from azinfer.serve.auth import key_matches
from azinfer.serve.engine.base import (
    ChatTurn,
    Engine,
    InvalidRequestError,
    QueueFullError,
    SamplingParams,
    TextDelta,
)
from azinfer.serve.settings import ServeSettings

__all__ = ["mount_ui"]


def _text(content: Any) -> str:
    """The text of a Gradio message content: a string, or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""


def _conversation(history: list[dict[str, Any]], message: str) -> list[ChatTurn]:
    turns = [ChatTurn(m["role"], _text(m["content"])) for m in history if m.get("role") in ("user", "assistant")]
    return turns + [ChatTurn("user", message)]


def mount_ui(app: FastAPI, settings: ServeSettings, engine: Callable[[], Engine | None]) -> FastAPI:
    """Mount the chat page on *app* at ``/``; with an API key set, the page asks for it."""
    import gradio as gr

    async def respond(
        message: str, history: list[dict[str, Any]], max_tokens: float, temperature: float, top_p: float,
        api_key: str | None = None,
    ) -> AsyncIterator[str]:
        if not key_matches(settings.api_key, api_key):
            raise gr.Error("Enter the API key of this endpoint above.")
        current = engine()
        if current is None:
            raise gr.Error("The model is still loading; try again in a moment.")
        try:
            params = SamplingParams(int(max_tokens), temperature=temperature, top_p=top_p)
            handle = await current.start_chat(_conversation(history, message), params)
        except (InvalidRequestError, QueueFullError) as error:
            raise gr.Error(str(error)) from error
        reply = ""
        try:
            async for event in handle.stream():
                if isinstance(event, TextDelta):
                    reply += event.text
                    yield reply
        finally:  # the page closed or the user pressed stop
            handle.cancel()

    with gr.Blocks(title="azinfer chat") as page:
        gr.Markdown("## Chat with your fine-tuned model")
        controls: list[Any] = [
            gr.Slider(1, 2048, value=settings.default_max_tokens, step=1, label="Max new tokens"),
            gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature"),
            gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p"),
        ]
        if settings.api_key:
            controls.append(gr.Textbox(label="API key", type="password", elem_id="api-key"))
        gr.ChatInterface(respond, additional_inputs=controls, concurrency_limit=None, fill_height=True)
    return gr.mount_gradio_app(app, page, path="/")
