import json

import pytest

from ft_data import build_sft_dataset, tokenize_conversation
from ft_data.masking import IGNORE_INDEX

CONVERSATION = [
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue — like the sky 🌤"},
]

# A template with no special end-of-turn token and a different layout from ChatML.
PLAIN_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}### User:\n{{ m['content'] }}\n"
    "{% else %}### Assistant:\n{{ m['content'] }}{{ eos_token }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)


def labelled_runs(tokenizer, row):
    """Decoded runs of consecutive labelled tokens."""
    runs, current = [], []
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


@pytest.mark.slow
def test_chatml_labels_are_exactly_assistant_turns(smol_tokenizer):
    row = tokenize_conversation(smol_tokenizer, CONVERSATION)
    assert labelled_runs(smol_tokenizer, row) == ["Hello! How can I help?<|im_end|>", "Blue — like the sky 🌤<|im_end|>"]
    # the injected default system prompt and the user turns are never trained on
    text = smol_tokenizer.decode(row["input_ids"])
    assert "You are a helpful AI assistant named SmolLM" in text


@pytest.mark.slow
def test_a_different_template_needs_no_per_model_rule(smol_tokenizer):
    tok = type(smol_tokenizer).from_pretrained(smol_tokenizer.name_or_path)
    tok.chat_template = PLAIN_TEMPLATE
    row = tokenize_conversation(tok, CONVERSATION)
    eos = tok.eos_token
    assert labelled_runs(tok, row) == [f"Hello! How can I help?{eos}", f"Blue — like the sky 🌤{eos}"]


@pytest.mark.slow
def test_sft_dataset_truncates_and_counts_dropped(smol_tokenizer, tmp_path):
    long_user = {"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]}
    long_answer = {"messages": [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "one " * 200}]}
    short = {"messages": CONVERSATION}
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (long_user, long_answer, short)))
    data = build_sft_dataset(smol_tokenizer, [(path, "auto")], cutoff_len=64)
    assert (data.examples, data.truncated, data.dropped) == (2, 1, 1)
    assert data.summary().startswith("2 sft examples (1 truncated, 1 dropped")
    assert set(data.dataset.column_names) == {"input_ids", "attention_mask", "labels"}
    assert max(len(ids) for ids in data.dataset["input_ids"]) == 64
