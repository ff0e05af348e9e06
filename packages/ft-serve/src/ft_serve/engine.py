"""One model behind the API: prompts rendered exactly as `ft chat` renders them, one generation
at a time on a worker thread (requests wait in arrival order), text handed over as it is
generated, and a generation stopped as soon as its client has gone.

Example:
    >>> from ft_models import ChatModel
    >>> engine = Engine(ChatModel.load("smollm2-135m-instruct"), name="smollm2")  # doctest: +SKIP
    >>> batch = engine.encode_chat([{"role": "user", "content": "Hi"}], max_tokens=16)  # doctest: +SKIP
    >>> asyncio.run(engine.complete(batch, Sampling(max_tokens=16))).text  # doctest: +SKIP
    'Hello! How can I help you today?'
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


class RequestError(Exception):
    """A request the API answers with a 4xx and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind


@dataclass(frozen=True)
class Sampling:
    """How one request generates: greedy at temperature 0 (`ft chat`'s default)."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Result:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length", or "cancelled" (the client went away)


_DONE = object()


class Engine:
    """A ChatModel (plain, adapter or streamed: anything with ``generate``) served one generation
    at a time. ``context``: the most tokens a prompt and its answer may take together (default:
    the model's ``max_position_embeddings``)."""

    def __init__(self, chat, name: str, context: int | None = None):
        self.chat, self.name = chat, name
        self.context = context or _context_of(chat)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ft-serve-generate")
        self.waiting = 0  # requests queued or generating, for /health
        self.finished: deque[Result] = deque(maxlen=256)  # recent results, newest last (for /health and tests)

    # -- prompts ---------------------------------------------------------------------------------

    def encode_chat(self, messages: list[dict], max_tokens: int):
        """``messages`` through the model's chat template, as `ft chat` does; refused if the prompt
        and ``max_tokens`` do not fit the context."""
        try:
            batch = self.chat.encode([messages])
        except Exception as e:  # a template that refuses the conversation (roles out of order...)
            raise RequestError(400, f"the chat template refused these messages: {e}", param="messages") from None
        return self._checked(batch, max_tokens, "messages")

    def encode_text(self, prompt: str, max_tokens: int):
        batch = self.chat.tokenizer([prompt], return_tensors="pt").to(self.chat.model.device)
        return self._checked(batch, max_tokens, "prompt")

    def _checked(self, batch, max_tokens: int, param: str):
        n = batch["input_ids"].shape[1]
        if n + max_tokens > self.context:
            raise RequestError(400, f"this model's context is {self.context} tokens: the prompt has {n} and max_tokens "
                               f"asks for {max_tokens} more; shorten the prompt or lower max_tokens",
                               param=param, code="context_length_exceeded")
        return batch

    # -- generating ------------------------------------------------------------------------------

    async def complete(self, batch, sampling: Sampling) -> Result:
        """The whole answer, generated when the requests before it are done."""
        cancel = threading.Event()
        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, self._generate, batch, sampling,
                                                                    None, cancel)
        finally:
            cancel.set()  # a request cancelled while waiting never starts
            self.waiting -= 1

    async def stream(self, batch, sampling: Sampling) -> AsyncIterator[str | Result]:
        """Pieces of text as they are generated, then the Result. Closing the iterator (a client that
        disconnects) stops the generation at its next token and frees the worker."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def emit(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        self.waiting += 1
        future = loop.run_in_executor(self._worker, self._generate, batch, sampling, emit, cancel)
        future.add_done_callback(lambda _: queue.put_nowait(_DONE))
        try:
            while (item := await queue.get()) is not _DONE:
                yield item
            yield future.result()
        finally:
            cancel.set()
            self.waiting -= 1

    def _generate(self, batch, sampling: Sampling, emit: Callable[[str], None] | None,
                  cancel: threading.Event) -> Result:
        """On the worker thread: one generation, cut at the stop strings."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        from ft_models.chat import GenerationOptions

        prompt_tokens = int(batch["input_ids"].shape[1])
        if cancel.is_set():
            return self._done(Result("", prompt_tokens, 0, "cancelled"))

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        options = GenerationOptions(max_new_tokens=sampling.max_tokens, temperature=sampling.temperature,
                                    top_p=sampling.top_p, stop=sampling.stop,
                                    repetition_penalty=self.chat.options.repetition_penalty)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)  # one generation at a time: the seed alone decides
        out = self.chat.generate_one(batch, options, emit, StoppingCriteriaList([Cancelled()]))
        text, new = out.text, out.token_ids
        if cancel.is_set():
            reason = "cancelled"
        elif out.stopped or (new and new[-1] in _eos_ids(self.chat.model, self.chat.tokenizer)):
            reason = "stop"
        else:
            reason = "length" if len(new) >= sampling.max_tokens else "stop"
        return self._done(Result(text, prompt_tokens, len(new), reason))

    def _done(self, result: Result) -> Result:
        self.finished.append(result)
        return result

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)


def _eos_ids(model, tokenizer) -> set[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _context_of(chat) -> int:
    config = getattr(chat.model, "config", None)
    context = getattr(config, "max_position_embeddings", None)
    if context:
        return int(context)
    limit = getattr(chat.tokenizer, "model_max_length", None)
    return int(limit) if limit and limit < 10**7 else 2048
