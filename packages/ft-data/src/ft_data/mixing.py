"""Several datasets into one (concatenated or interleaved), and a held-out evaluation split."""

from __future__ import annotations

import random

from ft_core import FtError
from ft_data.records import Record


def mix(parts: list[list[Record]], *, strategy: str = "concat", probabilities: list[float] | None = None,
        seed: int = 0) -> list[Record]:
    """Concatenate datasets, or interleave them by sampling with ``probabilities`` until one runs out."""
    if strategy == "concat":
        return [r for part in parts for r in part]
    if strategy != "interleave":
        raise FtError(f"mix strategy must be 'concat' or 'interleave', found {strategy!r}")
    weights = probabilities or [1.0] * len(parts)
    if len(weights) != len(parts) or any(w < 0 for w in weights) or not sum(weights):
        raise FtError(f"interleave needs one non-negative probability per dataset ({len(parts)}), found {weights}")
    rng, cursors, out = random.Random(seed), [0] * len(parts), []
    while True:
        k = rng.choices(range(len(parts)), weights)[0]
        if cursors[k] >= len(parts[k]):
            return out
        out.append(parts[k][cursors[k]])
        cursors[k] += 1


def train_eval_split(records: list[Record], val_size: float | int, seed: int = 0) -> tuple[list[Record], list[Record]]:
    """Shuffle, then hold out ``val_size`` (a fraction < 1 or a count) for evaluation."""
    n = round(len(records) * val_size) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if not 0 < n < len(records):
        raise FtError(f"val_size {val_size} leaves no train or no eval example out of {len(records)}")
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    return shuffled[n:], shuffled[:n]
