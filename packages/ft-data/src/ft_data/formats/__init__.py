"""Converters from file formats to canonical records (see ft_data.records)."""

from ft_data.formats.alpaca import AlpacaToMessages
from ft_data.formats.openai import OpenAIToMessages
from ft_data.formats.sharegpt import ShareGPTToMessages
from ft_data.formats.text import TextToDocument

CONVERTERS = {"alpaca": AlpacaToMessages(), "openai": OpenAIToMessages(), "sharegpt": ShareGPTToMessages(),
              "text": TextToDocument()}


def detect_format(row: dict) -> str | None:
    """The format whose keys ``row`` has, or None."""
    if "messages" in row or "prompt" in row:
        return "openai"
    if "conversations" in row:
        return "sharegpt"
    if "instruction" in row:
        return "alpaca"
    if "text" in row:
        return "text"
    return None


__all__ = ["CONVERTERS", "AlpacaToMessages", "OpenAIToMessages", "ShareGPTToMessages", "TextToDocument",
           "detect_format"]
