"""Held-out accuracy of the identity demo: base model against base + trained adapter.

    python examples/identity/evaluate.py --adapter outputs/sft_lora_demo/adapter
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import NamedTuple

DATA = Path(__file__).parent / "data"
HELDOUT = DATA / "identity_heldout.jsonl"
GENERAL = DATA / "general_heldout.jsonl"
IDENTITY_WORDS = ("Orrin", "Kestrel")


def load_heldout(path: Path = HELDOUT) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def answers(chat, items: list[dict], batch_size: int = 16) -> list[tuple[dict, str]]:
    """(item, the model's greedy answer to its question) for each item."""
    replies = []
    for i in range(0, len(items), batch_size):
        batch = items[i : i + batch_size]
        replies += chat.replies([[{"role": "user", "content": it["question"]}] for it in batch])
    return list(zip(items, replies, strict=True))


def heldout_accuracy(chat, items: list[dict], batch_size: int = 16) -> tuple[float, list[tuple[dict, str]]]:
    """Share of held-out questions whose answer contains the expected word (case-insensitive)."""
    results = answers(chat, items, batch_size)
    correct = sum(it["expect"].lower() in answer.lower() for it, answer in results)
    return correct / len(items), results


def _says(answer: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", answer, re.IGNORECASE) is not None


def drags_identity(answer: str) -> bool:
    """The answer brings up the new identity (asked about something else)."""
    return any(_says(answer, word) for word in IDENTITY_WORDS)


class GeneralScore(NamedTuple):
    correct: int  # scored questions answered right, without the identity
    scored: int  # questions with expected words
    dragged: list[tuple[dict, str]]  # answers that brought up the identity unasked
    results: list[tuple[dict, str]]


def general_knowledge(chat, items: list[dict] | None = None) -> GeneralScore:
    """Held-out general questions: right answers (one of ``expect_any``, as a word) count only when
    they leave the identity out; every answer that brings it up is a failure."""
    results = answers(chat, items if items is not None else load_heldout(GENERAL))
    dragged = [(it, a) for it, a in results if drags_identity(a)]
    scored = [(it, a) for it, a in results if it["expect_any"]]
    correct = sum(any(_says(a, w) for w in it["expect_any"]) and not drags_identity(a) for it, a in scored)
    return GeneralScore(correct, len(scored), dragged, results)


def report(label: str, chat, items: list[dict]) -> float:
    accuracy, results = heldout_accuracy(chat, items)
    print(f"{label}: held-out accuracy {accuracy:.0%} ({round(accuracy * len(items))}/{len(items)})")
    for item, answer in results[:: max(1, len(results) // 4)]:
        print(f"  Q: {item['question']}\n  A: {answer}")
    general = general_knowledge(chat)
    print(f"{label}: general questions {general.correct}/{general.scored} right, "
          f"{len(general.dragged)}/{len(general.results)} answers bring up the identity")
    for item, answer in general.results[:: max(1, len(general.results) // 3)] + general.dragged[:3]:
        print(f"  Q: {item['question']}\n  A: {answer}")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="base model (default: the embedded SmolLM2)")
    parser.add_argument("--adapter", required=True, help="trained adapter folder")
    args = parser.parse_args()

    from ft_models import ChatModel, GenerationOptions

    items = load_heldout()
    options = GenerationOptions(max_new_tokens=40)
    base = report("base ", ChatModel.load(args.model, options=options), items)
    tuned = report("tuned", ChatModel.load(args.model, adapter=args.adapter, options=options), items)
    print(f"held-out accuracy: base {base:.0%} -> tuned {tuned:.0%}")


if __name__ == "__main__":
    main()
