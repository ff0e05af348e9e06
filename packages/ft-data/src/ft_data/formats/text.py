"""Plain text rows for pre-training: ``{"text": str}`` (the key is configurable)."""

from __future__ import annotations

from dataclasses import dataclass

from ft_data.formats._checks import text_field
from ft_data.records import Record


@dataclass(frozen=True)
class TextToDocument:
    """Example:
    >>> TextToDocument()({"text": "Once upon a time"})
    {'text': 'Once upon a time'}
    """

    key: str = "text"

    def __call__(self, row: dict) -> Record:
        return {"text": text_field(row, self.key)}
