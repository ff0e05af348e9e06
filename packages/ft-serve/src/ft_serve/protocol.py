"""The request bodies the API accepts (the OpenAI fields ft serve honours; others are ignored, as
OpenAI's own clients send more than any server uses) and the response bodies it returns.

Example:
    >>> ChatRequest(model="m", messages=[{"role": "user", "content": "Hi"}]).max_new_tokens(256)
    256
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ft_serve.engine import RequestError, Result, Sampling


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def plain(self) -> dict[str, str]:
        """The message as the chat template takes it: a role and a string."""
        content = self.content or ""
        if isinstance(content, list):
            if any(part.type != "text" for part in content):
                raise RequestError(400, "only text content parts are supported", param="messages")
            content = "".join(part.text or "" for part in content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    max_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int = 1
    seed: int | None = None
    stream: bool = False
    stream_options: dict | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError("ft serve generates one choice per request: n must be 1")
        return n

    @field_validator("stop")
    @classmethod
    def _four_stops(cls, stop):
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("at most 4 stop sequences")
        return stop

    def max_new_tokens(self, default: int) -> int:
        return self.max_tokens or default

    def sampling(self, defaults) -> Sampling:
        """This request's sampling; what it leaves out comes from the server's options (`ft chat`'s)."""
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or defaults.stop)
        return Sampling(max_tokens=self.max_new_tokens(defaults.max_new_tokens),
                        temperature=defaults.temperature if self.temperature is None else self.temperature,
                        top_p=defaults.top_p if self.top_p is None else self.top_p, stop=stops, seed=self.seed)

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, gt=0)

    def max_new_tokens(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


class CompletionRequest(_Common):
    prompt: str | list[str]

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt):
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise ValueError("ft serve takes one prompt per request")
            return prompt[0]
        return prompt

    def max_new_tokens(self, default: int) -> int:
        return self.max_tokens or 16  # OpenAI's default for completions


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(result: Result) -> dict:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens}


def chat_response(rid: str, model: str, result: Result) -> dict:
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                         "finish_reason": result.finish_reason, "logprobs": None}],
            "usage": usage(result)}


def chat_chunk(rid: str, model: str, delta: dict, finish_reason: str | None = None) -> dict:
    return {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}


def completion_response(rid: str, model: str, result: Result) -> dict:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": result.text, "finish_reason": result.finish_reason, "logprobs": None}],
            "usage": usage(result)}


def completion_chunk(rid: str, model: str, text: str, finish_reason: str | None = None) -> dict:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}]}
