"""The HTTP API (FastAPI): ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions`` and
``POST /v1/completions``, with and without server-sent events. Every bad request is a 4xx with
an OpenAI-style body ``{"error": {"message", "type", "param", "code"}}``; nothing answers with a
traceback.

Example:
    >>> app = create_app(engine, api_key="secret")  # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000), or ft_serve.serve(engine)
"""

from __future__ import annotations

import hmac
import json
import logging
import time

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from ft_core import did_you_mean
from ft_serve.engine import Engine, RequestError, Result
from ft_serve.protocol import (
    ChatRequest,
    CompletionRequest,
    chat_chunk,
    chat_response,
    completion_chunk,
    completion_response,
    new_id,
    usage,
)

log = logging.getLogger("ft_serve")


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first problem, said as the field it is about and what is wrong with it."""
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}", None
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    msg = first.get("msg", "invalid").removeprefix("Value error, ")
    if first.get("type") == "missing":
        return f"'{field}' is required", field
    if first.get("type") in ("model_attributes_type", "dict_type") and not loc:
        return "the body must be a JSON object", None
    return (f"{field}: {msg}" if field else msg), (loc[0] if loc else None)


def create_app(engine: Engine, api_key: str | None = None, aliases: tuple[str, ...] = ()) -> FastAPI:
    """The API over ``engine``. ``api_key``: required as ``Authorization: Bearer KEY`` on /v1/*
    (compared in constant time). ``aliases``: other model names requests may use."""
    from importlib.metadata import version

    app = FastAPI(title="ft serve", version=version("ft-serve"))
    names = (engine.name, *aliases)
    defaults = engine.chat.options

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        return JSONResponse(error_body(exc.message, exc.kind, exc.param, exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return JSONResponse(error_body(message, param=param), status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(f"{request.method} {request.url.path}: {exc.detail}", kind),
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("ft serve: %s %s failed", request.method, request.url.path)
        return JSONResponse(error_body(f"the server failed: {type(exc).__name__}: {exc}", "server_error"),
                            status_code=500)

    def authorized(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise RequestError(401, "incorrect or missing API key: send it as 'Authorization: Bearer KEY'",
                               code="invalid_api_key")

    def served(model: str) -> str:
        if model not in names:
            raise RequestError(404, f"the model {model!r} does not exist{did_you_mean(model, names)}; this server "
                               f"serves {', '.join(repr(n) for n in names)}", param="model", code="model_not_found")
        return model

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": engine.name, "waiting": engine.waiting}

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def models():
        return {"object": "list", "data": [{"id": n, "object": "model", "created": int(time.time()), "owned_by": "ft"}
                                           for n in names]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    async def chat_completions(body: ChatRequest):
        model = served(body.model)
        sampling = body.sampling(defaults)
        batch = engine.encode_chat([m.plain() for m in body.messages], sampling.max_tokens)
        rid = new_id("chatcmpl")
        if not body.stream:
            return chat_response(rid, model, await engine.complete(batch, sampling))

        async def events():
            yield _sse(chat_chunk(rid, model, {"role": "assistant", "content": ""}))
            async for item in engine.stream(batch, sampling):
                if isinstance(item, Result):
                    yield _sse(chat_chunk(rid, model, {}, item.finish_reason))
                    if body.include_usage():
                        yield _sse({**chat_chunk(rid, model, {}), "choices": [], "usage": usage(item)})
                else:
                    yield _sse(chat_chunk(rid, model, {"content": item}))
            yield "data: [DONE]\n\n"

        return StreamingResponse(_guarded(events()), media_type="text/event-stream")

    @app.post("/v1/completions", dependencies=[Depends(authorized)])
    async def completions(body: CompletionRequest):
        model = served(body.model)
        sampling = body.sampling(defaults)
        batch = engine.encode_text(body.prompt, sampling.max_tokens)
        rid = new_id("cmpl")
        if not body.stream:
            return completion_response(rid, model, await engine.complete(batch, sampling))

        async def events():
            async for item in engine.stream(batch, sampling):
                if isinstance(item, Result):
                    yield _sse(completion_chunk(rid, model, "", item.finish_reason))
                    if body.include_usage():
                        yield _sse({**completion_chunk(rid, model, ""), "choices": [], "usage": usage(item)})
                else:
                    yield _sse(completion_chunk(rid, model, item))
            yield "data: [DONE]\n\n"

        return StreamingResponse(_guarded(events()), media_type="text/event-stream")

    return app


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"


async def _guarded(events):
    """A failure after the stream has started cannot change the status: it ends the stream with an
    error event instead of a cut connection."""
    try:
        async for event in events:
            yield event
    except Exception as e:  # noqa: BLE001
        log.exception("ft serve: a streamed generation failed")
        yield _sse(error_body(f"the server failed: {type(e).__name__}: {e}", "server_error"))
    finally:
        await events.aclose()
