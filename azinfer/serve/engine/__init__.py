"""Engines: the seam the HTTP layer talks to (:mod:`.base`), the text stream (:mod:`.stream`), and the engines.

``batched`` (:mod:`.batched`) and ``baseline`` (:mod:`.baseline`) run a
``transformers`` model (:mod:`.hf` holds what they share). Importing this
package imports neither torch nor a tokenizer.
"""

from __future__ import annotations

from azinfer.serve.engine.base import (
    ChatTurn,
    Engine,
    EngineStats,
    Finished,
    Generation,
    GenerationError,
    GenerationRequest,
    InvalidRequestError,
    PromptTooLongError,
    QueueFullError,
    SamplingParams,
    TextDelta,
)

__all__ = [
    "ChatTurn",
    "Engine",
    "EngineStats",
    "Finished",
    "Generation",
    "GenerationError",
    "GenerationRequest",
    "InvalidRequestError",
    "PromptTooLongError",
    "QueueFullError",
    "SamplingParams",
    "TextDelta",
]
