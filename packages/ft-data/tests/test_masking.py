import json

import pytest

from ft_data import build_dataset

CONVERSATION = [
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue — like the sky 🌤"},
]


@pytest.mark.slow
def test_sft_dataset_truncates_and_counts_dropped(smol_tokenizer, tmp_path):
    long_user = {"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]}
    long_answer = {"messages": [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "one " * 200}]}
    short = {"messages": CONVERSATION}
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (long_user, long_answer, short)))
    data = build_dataset(smol_tokenizer, [(path, "auto")], stage="sft", cutoff_len=64)
    assert (data.examples, data.truncated, data.dropped) == (2, 1, 1)
    assert data.summary().startswith("2 sft examples (1 truncated, 1 dropped")
    assert set(data.dataset.column_names) == {"input_ids", "attention_mask", "labels"}
    assert max(len(ids) for ids in data.dataset["input_ids"]) == 64
