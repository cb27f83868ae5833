"""The HTTP side of the server: the app (:mod:`.app`), OpenAI's wire format (:mod:`.wire`),
the key check (:mod:`.auth`), limits on one client (:mod:`.limits`), Prometheus' metrics (:mod:`.metrics`)
and the static chat page (``static/``).

Nothing here imports torch or a tokenizer: engines are reached through
:class:`azinfer.serve.engine.base.Engine` only.
"""
