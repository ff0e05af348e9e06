"""Chat with a model (optionally with an adapter): the engine behind `ft chat`."""

from __future__ import annotations

from collections.abc import Sequence
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
             options: GenerationOptions | None = None) -> ChatModel:
        model = model or DEFAULT_MODEL
        if adapter:
            check_adapter_for(model, adapter)  # before minutes of loading
        tokenizer = load_tokenizer(model)
        lm = load_model(model, dtype=dtype)
        if adapter:
            lm = load_adapter(lm, adapter, check=False)
        lm.eval()
        return cls(tokenizer, lm, options or GenerationOptions())

    def reply(self, conversation: Conversation) -> str:
        """The assistant's answer to ``conversation``."""
        return self.replies([conversation])[0]

    def replies(self, conversations: Sequence[Conversation]) -> list[str]:
        """Answers to several conversations, generated as one left-padded batch."""
        import torch

        tok = self.tokenizer
        texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        side, tok.padding_side = tok.padding_side, "left"
        try:
            batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tok.padding_side = side
        batch = batch.to(self.model.device)  # a model on the GPU (4-bit, or streamed) takes its inputs there
        with torch.inference_mode():
            out = self.model.generate(**batch, pad_token_id=tok.pad_token_id, **self.options.generate_kwargs(tok))
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        return [self._cut(t).strip() for t in tok.batch_decode(new_tokens, skip_special_tokens=True)]

    def _cut(self, text: str) -> str:
        """The text before the first stop string (generation stops on it, the batch's others run on)."""
        for stop in self.options.stop:
            text = text.split(stop, 1)[0]
        return text
