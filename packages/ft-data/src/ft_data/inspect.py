"""What `ft data preview / stats / validate` show: rendered examples with their trained parts,
token-length statistics, and every bad row of a source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ft_core import FtError
from ft_data.dataset import Source
from ft_data.loading import Loaded, load_records
from ft_data.masking import Segments, assistant_segments
from ft_data.quality import quality_counts
from ft_data.records import no_answer, record_kind
from ft_data.registry import DatasetSpec, load_spec
from ft_data.stages import STAGES
from ft_data.stages.pairwise import prompt_and_answer
from ft_data.templates import ChatFormat
from ft_data.tool_text import inline_tools


def load_source(source: Source, on_bad_row: str = "error") -> Loaded:
    if isinstance(source, DatasetSpec):
        return load_spec(source, on_bad_row=on_bad_row)
    return load_records(source[0], source[1], on_bad_row=on_bad_row)


def record_segments(fmt: ChatFormat, record: dict) -> list[tuple[str, Segments]]:
    """(label, segments) views of a record: one for a conversation, chosen and rejected for a pair;
    tool calls and tool lists the template drops written as text, as training writes them."""
    kind = record_kind(record)
    if kind == "text":
        return [("text", [(record["text"], True)])]
    record = inline_tools(record, fmt)
    if kind == "preference":
        views = []
        for key in ("chosen", "rejected"):
            prompt, answer = prompt_and_answer(fmt, record["prompt"], record[key])
            views.append((key, [(prompt, False), (answer, True)]))
        return views
    if kind == "prompt":  # the rendered prompt; ppo/grpo sample the answer
        return [("prompt", [(fmt.render(fmt.apply_system(record["prompt"]), generation_prompt=True), False)])]
    label = f"kto label={record['label']}" if kind == "kto" else "conversation"
    return [(label, assistant_segments(fmt, fmt.apply_system(record["messages"]), tools=record.get("tools")))]


def preview(tokenizer, source: Source, *, n: int = 3, template: str | None = None) -> list[tuple[str, Segments]]:
    """The first ``n`` records rendered, each cut into trained and untrained segments."""
    fmt = ChatFormat.for_tokenizer(tokenizer, template)
    records = load_source(source).records[:n]
    return [view for record in records for view in record_segments(fmt, record)]


@dataclass
class LengthStats:
    lengths: list[int]
    cutoff: int
    skipped: list[str] = field(default_factory=list)
    empty_answers: int = 0
    duplicates: int = 0

    @property
    def truncated(self) -> int:
        return sum(n > self.cutoff for n in self.lengths)

    def percentile(self, q: float) -> int:
        ordered = sorted(self.lengths)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def histogram(self, bins: int = 10) -> list[tuple[int, int, int]]:
        """(low, high, count) buckets over the token lengths."""
        low, top = min(self.lengths), max(self.lengths)
        width = max(1, -(-(top - low + 1) // bins))
        counts = [0] * bins
        for n in self.lengths:
            counts[min(bins - 1, (n - low) // width)] += 1
        return [(low + i * width, low + (i + 1) * width - 1, c) for i, c in enumerate(counts) if low + i * width <= top]


def length_stats(tokenizer, source: Source, *, cutoff: int = 1024, template: str | None = None,
                 on_bad_row: str = "skip") -> LengthStats:
    """Token length of every record as rendered for training (a pair counts its longer side)."""
    fmt = ChatFormat.for_tokenizer(tokenizer, template)
    loaded = load_source(source, on_bad_row)
    if not loaded.records:
        raise FtError(f"no usable rows: {len(loaded.skipped)} bad ({loaded.skipped[0] if loaded.skipped else 'none'})")
    texts = [[("".join(t for t, _ in segments)) for _, segments in record_segments(fmt, r)] for r in loaded.records]
    flat = tokenizer([t for views in texts for t in views], add_special_tokens=False)["input_ids"]
    lengths, k = [], 0
    for views in texts:
        lengths.append(max(len(ids) for ids in flat[k : k + len(views)]))
        k += len(views)
    return LengthStats(lengths, cutoff, loaded.skipped, **quality_counts(loaded.records))


def validate(sources: Sequence[Source], stage: str | None = None) -> tuple[int, list[str]]:
    """(good rows, problems) over every row of every source; nothing stops at the first error:
    a bad row, line or whole file is one problem each, and the next one is read.

    With ``stage``, rows that stage cannot train on are problems too. Without it, a row with no
    answer is a problem where the same source has rows with answers (a forgotten ``output``);
    a source of prompts only is what ppo and grpo read.
    """
    good, problems = 0, []
    for source in sources:
        try:
            loaded = load_source(source, on_bad_row="skip")
        except FtError as e:
            problems.append(str(e))
            continue
        wrong = _wrong_kind(loaded, stage)
        path = source.path if isinstance(source, DatasetSpec) else source[0] if isinstance(source, tuple) else source
        problems += loaded.skipped + [f"{path} row {row}: {why}" for row, why in wrong]
        good += len(loaded.records) - len(wrong)
    return good, problems


def _wrong_kind(loaded: Loaded, stage: str | None) -> list[tuple[int, str]]:
    kinds = [record_kind(r) for r in loaded.records]
    prompts = kinds.count("prompt")
    mixed = 0 < prompts < len(kinds) + len(loaded.skipped)
    wrong = []
    for row, record, kind in zip(loaded.rows, loaded.records, kinds, strict=True):
        allowed = STAGES[stage][0] if stage else None
        if kind == "prompt" and (mixed if allowed is None else "prompt" not in allowed):
            wrong.append((row, no_answer(record)))
        elif allowed is not None and kind not in allowed:
            wrong.append((row, f"stage '{stage}' needs {' or '.join(allowed)} rows, found a {kind} row"))
    return wrong
