"""Held-out accuracy of the identity demo: base model against base + trained adapter.

    python examples/identity/evaluate.py --adapter outputs/sft_lora_demo/adapter
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELDOUT = Path(__file__).parent / "data" / "identity_heldout.jsonl"
RETENTION = ("What is the capital of France?", "Paris")


def load_heldout(path: Path = HELDOUT) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def heldout_accuracy(chat, items: list[dict], batch_size: int = 16) -> tuple[float, list[tuple[dict, str]]]:
    """Share of held-out questions whose answer contains the expected word (case-insensitive)."""
    answers = []
    for i in range(0, len(items), batch_size):
        batch = items[i : i + batch_size]
        answers += chat.replies([[{"role": "user", "content": it["question"]}] for it in batch])
    results = list(zip(items, answers, strict=True))
    correct = sum(it["expect"].lower() in answer.lower() for it, answer in results)
    return correct / len(items), results


def report(label: str, chat, items: list[dict]) -> float:
    accuracy, results = heldout_accuracy(chat, items)
    print(f"{label}: held-out accuracy {accuracy:.0%} ({round(accuracy * len(items))}/{len(items)})")
    for item, answer in results[:: max(1, len(results) // 4)]:
        print(f"  Q: {item['question']}\n  A: {answer}")
    print(f"  Q: {RETENTION[0]}\n  A: {chat.reply([{'role': 'user', 'content': RETENTION[0]}])}")
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
