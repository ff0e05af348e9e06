"""How close a compressed split computes to the uncompressed one: next-token top-1 agreement at
every position of a text, and each model's perplexity on it.

Example:
    >>> q = Quality(positions=300, top1_agreement=0.97, perplexity_reference=9.1, perplexity=9.3)
    >>> q.summary()
    'top-1 agreement 97.0% over 300 positions; perplexity 9.10 -> 9.30 (+2.2%)'
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# Our own text for the measurement (not from any dataset): plain English prose.
SAMPLE_TEXT = (
    "The lighthouse at the end of the harbour was built more than a century ago, when ships still carried "
    "coal and timber along the coast. Its keeper lived in a small stone house beside the tower and climbed "
    "the spiral stairs every evening to light the lamp. In winter the storms came in from the west, and the "
    "waves broke over the sea wall so hard that the windows shook. The keeper wrote down the weather in a "
    "thick notebook: the direction of the wind, the height of the waves, and the names of the ships that "
    "passed. Years later, when the lamp was replaced by an automatic light, the notebooks were given to the "
    "town library. Students still read them to learn how the climate of the coast has changed. They found "
    "that the storms were once less frequent but stronger, that the harbour froze in three winters out of "
    "ten, and that fishing boats went out even in fog because the families depended on the catch. Today the "
    "tower is a museum. Visitors can climb the same stairs, look at the great glass lens, and imagine the "
    "long nights when a single flame was all that kept the ships away from the rocks. The town holds a "
    "festival every summer in honour of the keepers, with music, boat races and a market where local "
    "farmers sell bread, cheese, honey and apples. Children paint pictures of the lighthouse, and the best "
    "ones are hung in the library next to the old notebooks, so that the past and the present sit side by "
    "side on the same wall."
)


class Quality(NamedTuple):
    positions: int
    top1_agreement: float
    perplexity_reference: float
    perplexity: float

    def summary(self) -> str:
        change = self.perplexity / self.perplexity_reference - 1
        return (f"top-1 agreement {100 * self.top1_agreement:.1f}% over {self.positions} positions; "
                f"perplexity {self.perplexity_reference:.2f} -> {self.perplexity:.2f} ({100 * change:+.1f}%)")


def _perplexity(logits: torch.Tensor, ids: torch.Tensor) -> float:
    loss = torch.nn.functional.cross_entropy(logits[0, :-1].float(), ids[0, 1:])
    return float(loss.exp())


def compare(reference, candidate, ids: torch.Tensor) -> Quality:
    """``reference`` and ``candidate`` (anything with ``forward(ids) -> logits``, such as two
    LayerwiseModels) on the token ids ``ids`` (one row)."""
    want, got = reference.forward(ids), candidate.forward(ids)
    agree = (want[0, :-1].argmax(-1) == got[0, :-1].argmax(-1)).float().mean()
    return Quality(ids.shape[1] - 1, float(agree), _perplexity(want, ids), _perplexity(got, ids))
