"""Chat with a model (optionally with an adapter): the engine behind `ft chat`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ft_models.adapter_check import check_adapter_for
from ft_models.adapters import load_adapter
from ft_models.embedded import DEFAULT_MODEL
from ft_models.loading import load_model, load_tokenizer

Conversation = list[dict[str, str]]


@dataclass
class GenerationOptions:
    """Defaults shared by every ft command that generates text: greedy unless temperature > 0."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()  # generation ends at any of these strings

    def generate_kwargs(self, tokenizer=None) -> dict:
        sampling = self.temperature > 0
        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": sampling,
                  "repetition_penalty": self.repetition_penalty}
        if sampling:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        if self.stop:
            kwargs.update(stop_strings=list(self.stop), tokenizer=tokenizer)
        return kwargs


class StopCutter:
    """Text that arrives in pieces, cut at the first stop string: text that may be the start of a
    stop string is held back until the next piece shows whether it is one.

    Example:
        >>> cut = StopCutter(("</s>",))
        >>> [cut.feed("Paris</"), cut.feed("s> more"), cut.flush()]
        ['Paris', '', '']
    """

    def __init__(self, stops: Sequence[str]):
        self.stops, self.held, self.stopped = tuple(s for s in stops if s), "", False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self.held += text
        end = self._first_stop()
        found = end < len(self.held)
        # a stop that starts before `end` may still be arriving (stops "<><" and ">" in "<>"): hold from there
        pending = next((i for i in range(end) if self._may_start(self.held[i:])), None)
        if pending is None and found:
            out, self.held, self.stopped = self.held[:end], "", True
            return out
        cut = end if pending is None else pending
        out, self.held = self.held[:cut], self.held[cut:]
        return out

    def _first_stop(self) -> int:
        """Where the first complete stop string in the held text starts; its length if none."""
        return min((i for i in (self.held.find(s) for s in self.stops) if i >= 0), default=len(self.held))

    def _may_start(self, tail: str) -> bool:
        return any(len(tail) < len(s) and s.startswith(tail) for s in self.stops)

    def flush(self) -> str:
        """The held text at the end: a longer stop it was held for can no longer complete, so it is
        cut at the first stop it holds (stops "b" and "<b<", text ending in "<b": "<")."""
        if self.stopped:
            out = ""
        else:
            end = self._first_stop()
            out, self.stopped = self.held[:end], end < len(self.held)
        self.held = ""
        return out


def callback_streamer(tokenizer, emit: Callable[[str], None]):
    """transformers' TextStreamer (incremental decoding: whole words, complete characters, the
    prompt skipped) handing each piece to ``emit``."""
    from transformers import TextStreamer

    class _Callback(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                emit(text)

    return _Callback(tokenizer, skip_prompt=True, skip_special_tokens=True)


@dataclass(frozen=True)
class Generated:
    text: str  # cut at the first stop string
    token_ids: list[int]
    stopped: bool  # a stop string ended it


@dataclass
class ChatModel:
    """A tokenizer and model pair that answers conversations.

    Example:
        >>> chat = ChatModel.load("smollm2-135m-instruct")  # doctest: +SKIP
        >>> chat.reply([{"role": "user", "content": "What is the capital of France?"}])  # doctest: +SKIP
        'The capital of France is Paris.'
    """

    tokenizer: object
    model: object
    options: GenerationOptions = field(default_factory=GenerationOptions)

    @classmethod
    def load(cls, model: str | None = None, adapter: str | None = None, dtype: str = "auto",
             options: GenerationOptions | None = None, device: str = "auto") -> ChatModel:
        """``device``: ``auto`` (the GPU where there is one), ``cpu``, ``cuda`` or ``cuda:N``."""
        model = model or DEFAULT_MODEL
        if adapter:
            check_adapter_for(model, adapter)  # before minutes of loading
        tokenizer = load_tokenizer(model)
        lm = load_model(model, dtype=dtype, device=device)
        if adapter:
            lm = load_adapter(lm, adapter, check=False)
        lm.eval()
        return cls(tokenizer, lm, options or GenerationOptions())

    def reply(self, conversation: Conversation, on_text: Callable[[str], None] | None = None) -> str:
        """The assistant's answer to ``conversation``. ``on_text``: called with each piece of the
        answer as it is generated (whole words, cut at the stop strings), e.g. ``print``."""
        if on_text is None:
            return self.replies([conversation])[0]
        return self.generate_one(self.encode([conversation]), self.options, on_text).text.strip()

    def generate_one(self, batch, options: GenerationOptions, on_text: Callable[[str], None] | None = None,
                     stopping_criteria=None) -> Generated:
        """One prompt's answer from ``batch`` (see ``encode``) with ``options``: its text cut at the
        stop strings and handed to ``on_text`` piece by piece as it is generated, its new token ids,
        and whether a stop string ended it. ``stopping_criteria``: more criteria for ``generate``."""
        import torch

        tok = self.tokenizer
        cutter = StopCutter(options.stop)
        streamer = None if on_text is None else \
            callback_streamer(tok, lambda text: (piece := cutter.feed(text)) and on_text(piece))
        with torch.inference_mode():
            out = self.model.generate(**batch, pad_token_id=tok.pad_token_id, streamer=streamer,
                                      stopping_criteria=stopping_criteria, **options.generate_kwargs(tok))
        if on_text is not None and (rest := cutter.flush()):
            on_text(rest)
        new = out[0, batch["input_ids"].shape[1]:].tolist()
        whole = StopCutter(options.stop)
        text = whole.feed(tok.decode(new, skip_special_tokens=True)) + whole.flush()
        return Generated(text, new, whole.stopped)

    def encode(self, conversations: Sequence[Conversation]):
        """The conversations as one left-padded batch of prompt ids (the chat template with the
        assistant's turn opened), on the model's device: what ``replies`` generates from."""
        tok = self.tokenizer
        texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        side, tok.padding_side = tok.padding_side, "left"
        try:
            batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tok.padding_side = side
        return batch.to(self.model.device)  # a model on the GPU (4-bit, or streamed) takes its inputs there

    def replies(self, conversations: Sequence[Conversation]) -> list[str]:
        """Answers to several conversations, generated as one left-padded batch."""
        import torch

        tok = self.tokenizer
        batch = self.encode(conversations)
        with torch.inference_mode():
            out = self.model.generate(**batch, pad_token_id=tok.pad_token_id, **self.options.generate_kwargs(tok))
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        return [self._cut(t).strip() for t in tok.batch_decode(new_tokens, skip_special_tokens=True)]

    def _cut(self, text: str) -> str:
        """The text before the first stop string (generation stops on it, the batch's others run on)."""
        cutter = StopCutter(self.options.stop)
        return cutter.feed(text) + cutter.flush()
