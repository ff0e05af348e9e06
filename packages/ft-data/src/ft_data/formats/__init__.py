"""Converters from file formats to canonical conversations."""

from ft_data.formats.alpaca import AlpacaToMessages
from ft_data.formats.openai import OpenAIToMessages

CONVERTERS = {"alpaca": AlpacaToMessages(), "openai": OpenAIToMessages()}


def detect_format(row: dict) -> str | None:
    """The format whose keys ``row`` has, or None."""
    if "messages" in row:
        return "openai"
    if "instruction" in row:
        return "alpaca"
    return None


__all__ = ["CONVERTERS", "AlpacaToMessages", "OpenAIToMessages", "detect_format"]
