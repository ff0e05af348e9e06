"""Deterministic synthetic multi-turn conversations in ShareGPT form (our own generator)."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ("the model data train token layer answer question time place light water river stone music paper "
         "window garden number simple quick bright quiet early later often never always because although "
         "explain describe compare imagine remember consider build measure write read listen travel").split()


def sentence(rng: random.Random, low: int, high: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + rng.choice(".?!")


def conversation(rng: random.Random) -> dict:
    turns = []
    for _ in range(rng.randint(1, 4)):
        turns.append({"from": "human", "value": sentence(rng, 5, 40)})
        turns.append({"from": "gpt", "value": " ".join(sentence(rng, 5, 25) for _ in range(rng.randint(1, 4)))})
    row = {"conversations": turns}
    if rng.random() < 0.3:
        row["system"] = sentence(rng, 4, 12)
    return row


def write_chats(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.write_text("".join(json.dumps(conversation(rng)) + "\n" for _ in range(n)))
    return path
