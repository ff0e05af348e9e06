import json

import pytest

from ft_core import FtError
from ft_data import build_dataset
from ft_data.masking import IGNORE_INDEX

pytestmark = pytest.mark.slow  # needs the embedded tokenizer

CHAT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "See you"}]


def write(tmp_path, rows, name="d.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [(path, "auto")]


def trained_text(tok, row):
    return tok.decode([t for t in row["labels"] if t != IGNORE_INDEX])


def test_sft_all_turns_or_last_only(smol_tokenizer, tmp_path):
    files = write(tmp_path, [{"messages": CHAT}])
    everything = build_dataset(smol_tokenizer, files, stage="sft").dataset[0]
    last = build_dataset(smol_tokenizer, files, stage="sft", train_on="last").dataset[0]
    assert trained_text(smol_tokenizer, everything) == "Hello<|im_end|>See you<|im_end|>"
    assert trained_text(smol_tokenizer, last) == "See you<|im_end|>"
    assert everything["input_ids"] == last["input_ids"]


def test_pairwise_prompt_and_completions(smol_tokenizer, tmp_path):
    row = {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": [{"role": "assistant", "content": "4"}],
           "rejected": [{"role": "assistant", "content": "5"}]}
    data = build_dataset(smol_tokenizer, write(tmp_path, [row]), stage="dpo")
    out = data.dataset[0]
    assert smol_tokenizer.decode(out["prompt_input_ids"]).endswith("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert smol_tokenizer.decode(out["chosen_input_ids"]) == "4<|im_end|>"
    assert smol_tokenizer.decode(out["rejected_input_ids"]) == "5<|im_end|>"


def test_pairwise_cutoff_keeps_the_prompt_end_and_half_the_budget_for_answers(smol_tokenizer, tmp_path):
    row = {"prompt": [{"role": "user", "content": "word " * 100}], "chosen": [{"role": "assistant", "content": "yes " * 50}],
           "rejected": [{"role": "assistant", "content": "no"}]}
    data = build_dataset(smol_tokenizer, write(tmp_path, [row]), stage="rm", cutoff_len=40)
    out = data.dataset[0]
    assert data.truncated == 1 and data.dropped == 0
    assert len(out["chosen_input_ids"]) == 20 and len(out["prompt_input_ids"]) == 20
    assert smol_tokenizer.decode(out["prompt_input_ids"]).endswith("<|im_start|>assistant\n")


def test_kto_and_prompt_only(smol_tokenizer, tmp_path):
    rows = [{"messages": CHAT, "label": True}, {"messages": CHAT[:2], "label": False}]
    kto = build_dataset(smol_tokenizer, write(tmp_path, rows), stage="kto").dataset
    assert kto["label"] == [True, False]
    assert smol_tokenizer.decode(kto[0]["completion_input_ids"]) == "See you<|im_end|>"
    assert "Hello<|im_end|>" in smol_tokenizer.decode(kto[0]["prompt_input_ids"])
    prompts = build_dataset(smol_tokenizer, write(tmp_path, [{"messages": CHAT}], "p.jsonl"), stage="grpo").dataset
    assert smol_tokenizer.decode(prompts[0]["prompt_input_ids"]).endswith("Bye<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("row, fmt", [
    ({"instruction": "Bye"}, "alpaca"),
    ({"prompt": "Bye"}, "auto"),
    ({"prompt": [{"role": "user", "content": "Bye"}]}, "auto"),
    ({"messages": [{"role": "user", "content": "Bye"}]}, "auto"),
    ({"conversations": [{"from": "human", "value": "Bye"}]}, "sharegpt"),
], ids=["alpaca", "prompt-string", "prompt-messages", "messages", "sharegpt"])
def test_prompt_only_rows_serve_the_online_stages_and_are_refused_elsewhere(smol_tokenizer, tmp_path, row, fmt):
    files = [(write(tmp_path, [row])[0][0], fmt)]
    for stage in ("grpo", "ppo"):
        prompt = build_dataset(smol_tokenizer, files, stage=stage, default_system="Be brief.").dataset[0]
        assert smol_tokenizer.decode(prompt["prompt_input_ids"]) == (
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(FtError, match=r"d.jsonl row 1: .* \(rows without an answer serve only pt, as documents, and "):
        build_dataset(smol_tokenizer, files, stage="sft")


def test_pt_concatenates_with_eos_and_chunks(smol_tokenizer, tmp_path):
    rows = [{"text": "alpha beta gamma " * 10}, {"text": "delta " * 30}]
    data = build_dataset(smol_tokenizer, write(tmp_path, rows), stage="pt", cutoff_len=16)
    blocks = data.dataset["input_ids"]
    assert all(len(b) == 16 for b in blocks) and len(blocks) >= 4
    assert smol_tokenizer.eos_token_id in sum(blocks, [])
    assert data.dataset[0]["labels"] == blocks[0]


def test_pt_reads_llamafactorys_pretraining_entries_and_prompt_rows(smol_tokenizer, tmp_path):
    """LLaMA-Factory's pretraining data: ``"columns": {"prompt": "text"}`` in dataset_info.json
    (its c4_demo, wikipedia): rows without an answer whose prompt is the document. As its pt does,
    the document is the first message's text (an alpaca row's instruction), not the system prompt."""
    from ft_data import load_registry

    docs = [f"the quick brown fox {i} jumps over the lazy dog." for i in range(6)]
    (tmp_path / "c4_demo.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"c4_demo": {"file_name": "c4_demo.jsonl",
                                                                         "columns": {"prompt": "text"}}}))
    spec = load_registry(tmp_path / "dataset_info.json")["c4_demo"]
    eos = smol_tokenizer.eos_token_id
    stream = sum((smol_tokenizer(d, add_special_tokens=False)["input_ids"] + [eos] for d in docs), [])
    blocks = build_dataset(smol_tokenizer, [spec], stage="pt", cutoff_len=16, cache=False).dataset["input_ids"]
    assert blocks == [stream[i:i + 16] for i in range(0, len(stream) - 15, 16)] and len(blocks) >= 3
    rows = [{"instruction": "alpha beta gamma", "system": "not the document"}]
    data = build_dataset(smol_tokenizer, write(tmp_path, rows * 8, "a.jsonl"), stage="pt", cutoff_len=8, cache=False)
    assert smol_tokenizer.decode(sum(data.dataset["input_ids"], [])).startswith(
        ("alpha beta gamma" + smol_tokenizer.eos_token) * 2)


def test_pt_blocks_span_the_whole_corpus_whatever_num_proc(smol_tokenizer, tmp_path):
    """LLaMA-Factory's YAMLs carry preprocessing_num_workers: 16. Blocks formed per worker's shard
    lost every shard's tail (16 short documents in 16 shards made no block at all)."""
    rows = [{"text": f"the quick brown fox {i} jumps over the lazy dog."} for i in range(16)]
    files = write(tmp_path, rows)
    one = build_dataset(smol_tokenizer, files, stage="pt", cutoff_len=64, cache=False).dataset["input_ids"]
    many = build_dataset(smol_tokenizer, files, stage="pt", cutoff_len=64, num_proc=16, cache=False)
    assert many.dataset["input_ids"] == one and len(one) == 16 * 13 // 64  # 13 tokens a document with its eos
    with pytest.raises(FtError, match=r"the pt documents hold 13 tokens, fewer than one block of cutoff_len=64; "
                                      r"lower cutoff_len or add text"):
        build_dataset(smol_tokenizer, write(tmp_path, rows[:1], "one.jsonl"), stage="pt", cutoff_len=64, cache=False)


def test_a_bare_path_is_a_file_of_detected_format(smol_tokenizer, tmp_path):
    path = write(tmp_path, [{"messages": CHAT}])[0][0]
    for source in (str(path), path):  # was read as a (path, format) pair: "data file / is a folder"
        assert build_dataset(smol_tokenizer, [source], stage="sft").examples == 1


def test_stage_needs_the_right_rows(smol_tokenizer, tmp_path):
    with pytest.raises(FtError, match=r"d.jsonl row 1: stage 'dpo' needs preference rows, found a conversation row"):
        build_dataset(smol_tokenizer, write(tmp_path, [{"messages": CHAT}]), stage="dpo")
    with pytest.raises(FtError, match=r"unknown stage 'sfft' \(did you mean 'sft'\?\)"):
        build_dataset(smol_tokenizer, write(tmp_path, [{"messages": CHAT}]), stage="sfft")


def test_second_run_reuses_the_cache(smol_tokenizer, tmp_path):
    files = write(tmp_path, [{"messages": CHAT}] * 50)
    first = build_dataset(smol_tokenizer, files, stage="sft", num_proc=2)
    second = build_dataset(smol_tokenizer, files, stage="sft", num_proc=2)
    assert not first.from_cache and second.from_cache
    assert second.dataset["input_ids"] == first.dataset["input_ids"] and second.examples == 50
    third = build_dataset(smol_tokenizer, files, stage="sft", train_on="last")  # another option: no reuse
    assert not third.from_cache


def test_sft_packing_into_rows(smol_tokenizer, tmp_path):
    rows = [{"messages": CHAT}] * 30
    plain = build_dataset(smol_tokenizer, write(tmp_path, rows), stage="sft", cutoff_len=128)
    packed = build_dataset(smol_tokenizer, write(tmp_path, rows), stage="sft", cutoff_len=128, packing=True)
    n = len(plain.dataset[0]["input_ids"])
    assert packed.examples == -(-30 // (128 // n)) and packed.packed_from == 30
    assert packed.summary().startswith(f"30 sft examples packed into {packed.examples} rows (0 truncated")
    row = packed.dataset[0]
    assert len(row["input_ids"]) == n * (128 // n) and row["seq_lengths"] == [n] * (128 // n)
    assert row["position_ids"][:n] == list(range(n)) and row["position_ids"][n] == 0
    assert row["input_ids"][:n] == plain.dataset[0]["input_ids"]
    assert row["labels"][0] == -100 and row["labels"][n] == -100 and row["labels"][1:n] == plain.dataset[0]["labels"][1:]
    # the Arrow route and the list route pack identically
    from ft_data import pack_examples
    assert pack_examples(plain.dataset.to_list(), 128) == packed.dataset.to_list()


@pytest.mark.parametrize("packing", [False, True])
def test_column_routes_equal_the_row_route(smol_tokenizer, tmp_path, monkeypatch, packing):
    """The flat-column routes (one process with the tokenizer on a thread over several chunks, and
    worker processes) give the same rows and counts as the per-example row route: truncated (the
    4-turn chat, the long answer), dropped (a long prompt pushes the only answer past the cutoff), kept."""
    from ft_data import columns
    from ft_data.stages import COLUMNAR

    long_prompt = [{"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "late"}]
    long_answer = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "go " * 80}]
    files = write(tmp_path, [{"messages": m} for m in ([CHAT, long_prompt, long_answer, CHAT[:2]] * 9)])

    def build(**options):
        return build_dataset(smol_tokenizer, files, stage="sft", cutoff_len=40, packing=packing, cache=False, **options)

    monkeypatch.setattr(columns, "CHUNK", 5)  # several chunks in flight
    one, workers = build(), build(num_proc=2)
    monkeypatch.delitem(COLUMNAR, "sft")
    rows = build()
    for got in (one, workers):
        assert (got.truncated, got.dropped, got.examples) == (rows.truncated, rows.dropped, rows.examples)
        assert got.dataset.to_list() == rows.dataset.to_list()
    assert (rows.truncated, rows.dropped) == (18, 9) and (packing or rows.examples == 27)


def test_empty_answers_and_exact_duplicates_are_counted_in_the_summary(smol_tokenizer, tmp_path):
    import json

    from ft_data import build_dataset

    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(4)]
    rows += [rows[0], rows[1], {"instruction": "say nothing", "output": "  "}]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = build_dataset(smol_tokenizer, [(path, "auto")], stage="sft", cache=False)
    assert (data.examples, data.empty_answers, data.duplicates) == (7, 1, 2)
    assert data.summary().endswith("; note: 1 row with an empty answer (only the end-of-turn marker is trained), "
                                   "2 rows repeated exactly")


def test_records_in_memory_build_like_a_file(smol_tokenizer, tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(3)]
    from_file = build_dataset(smol_tokenizer, write(tmp_path, rows), stage="sft", cache=False)
    from_records = build_dataset(smol_tokenizer, [rows], stage="sft", cache=False)
    assert from_records.dataset["input_ids"] == from_file.dataset["input_ids"]
    with pytest.raises(FtError, match="stage 'dpo' needs preference rows, found a conversation row"):
        build_dataset(smol_tokenizer, [rows], stage="dpo", cache=False)
    with pytest.raises(FtError, match=r"data file .*missing.jsonl does not exist"):
        build_dataset(smol_tokenizer, [(tmp_path / "missing.jsonl", "auto"), *write(tmp_path, rows)], stage="sft")
