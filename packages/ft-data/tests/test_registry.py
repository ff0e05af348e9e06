import json

import pytest

from ft_core import FtError
from ft_data import load_registry, load_spec, mix, train_eval_split

INFO = {
    "qa": {"file_name": "qa.json", "columns": {"prompt": "question", "response": "answer"}},
    "chat": {"file_name": "chat.jsonl", "formatting": "sharegpt",
             "columns": {"messages": "turns", "system": "sys"},
             "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "me", "assistant_tag": "bot"}},
    "pairs": {"file_name": "pairs.json", "ranking": True},
    "table": {"file_name": "tables", "max_samples": 3},
}


@pytest.fixture
def registry(tmp_path):
    (tmp_path / "qa.json").write_text(json.dumps([{"question": f"q{i}", "answer": f"a{i}"} for i in range(4)]))
    (tmp_path / "chat.jsonl").write_text(json.dumps({
        "turns": [{"speaker": "me", "text": "hi"}, {"speaker": "bot", "text": "hello"}], "sys": "Be kind."}) + "\n")
    (tmp_path / "pairs.json").write_text(json.dumps([{"instruction": "q", "chosen": "good", "rejected": "bad"}]))
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "a.csv").write_text("instruction,output\nt1,a1\nt2,a2\n")
    import datasets

    datasets.Dataset.from_dict({"instruction": ["t3", "t4"], "output": ["a3", "a4"]}).to_parquet(
        str(tmp_path / "tables" / "b.parquet"))
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps(INFO))
    return load_registry(path)


def test_llama_factory_schema_columns_tags_ranking(registry):
    qa = load_spec(registry["qa"]).records
    assert qa[0] == {"messages": [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}]}
    chat = load_spec(registry["chat"]).records[0]["messages"]
    assert chat == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"}]
    assert set(load_spec(registry["pairs"]).records[0]) == {"prompt", "chosen", "rejected"}


def test_folder_of_csv_and_parquet_with_max_samples(registry):
    loaded = load_spec(registry["table"])
    users = [r["messages"][0]["content"] for r in loaded.records]
    assert users == ["t1", "t2", "t3"]  # a.csv, then b.parquet, stopped at max_samples=3


def test_mixing_and_splitting(registry):
    a = load_spec(registry["qa"]).records
    b = load_spec(registry["table"]).records
    assert mix([a, b]) == a + b
    mixed = mix([a, b], strategy="interleave", probabilities=[0.5, 0.5], seed=1)
    assert set(map(str, mixed)) <= set(map(str, a + b)) and len(mixed) <= len(a + b)
    assert [r for r in mixed if r in a] == a[: len([r for r in mixed if r in a])]  # order kept within a source
    assert mix([a, b], strategy="interleave", probabilities=[1, 0]) == a  # stops when the drawn source runs out
    train, evals = train_eval_split(a + b, 0.25, seed=0)
    assert (len(train), len(evals)) == (5, 2) and sorted(map(str, train + evals)) == sorted(map(str, a + b))
    with pytest.raises(FtError, match="leaves no train or no eval"):
        train_eval_split(a, 10)


def test_registry_errors(tmp_path):
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps({"x": {"file_name": "x.json", "formating": "alpaca"}}))
    with pytest.raises(FtError, match=r"dataset 'x': unknown key 'formating' \(did you mean 'formatting'\?\)"):
        load_registry(path)
    path.write_text(json.dumps({"x": {"file_name": "x.json", "split": "validation"}}))
    with pytest.raises(FtError, match="split 'validation': a local file has the one split 'train'"):
        load_registry(path)
    path.write_text(json.dumps({"x": {"hf_hub_url": "org/data"}}))
    with pytest.raises(FtError, match="dataset 'x' has no file_name .*hub"):
        load_registry(path)
    path.write_text(json.dumps({"x": {"file_name": "x.json", "columns": {"prompt": "q"}}}))
    (tmp_path / "x.json").write_text(json.dumps([{"question": "oops", "output": "a"}]))
    with pytest.raises(FtError, match=r"x.json row 1: missing column 'q' \(mapped to 'instruction'\)"):
        load_spec(load_registry(path)["x"])


def test_ranking_and_sharegpt_preference_columns(tmp_path):
    turn = lambda role, text: {"from": role, "value": text}  # noqa: E731
    (tmp_path / "prefs.json").write_text(json.dumps([{"conversations": [turn("human", "2+2?")],
                                                      "better": turn("gpt", "4"), "worse": turn("gpt", "5")}]))
    (tmp_path / "plain.json").write_text(json.dumps([{"instruction": "q", "output": "a"}]))
    (tmp_path / "kto.json").write_text(json.dumps([{"conversations": [turn("human", "hi"), turn("gpt", "yo")],
                                                    "good": False}]))
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps({
        "prefs": {"file_name": "prefs.json", "formatting": "sharegpt", "ranking": True,
                  "columns": {"messages": "conversations", "chosen": "better", "rejected": "worse"}},
        "not_pairs": {"file_name": "plain.json", "ranking": True},
        "kto": {"file_name": "kto.json", "formatting": "sharegpt", "columns": {"kto_tag": "good"}}}))
    specs = load_registry(path)
    pair = load_spec(specs["prefs"]).records[0]
    assert pair["chosen"] == [{"role": "assistant", "content": "4"}] and pair["rejected"][0]["content"] == "5"
    with pytest.raises(FtError, match=r"plain.json row 1: dataset 'not_pairs' is marked ranking but the row has no "
                                      "chosen and rejected answers"):
        load_spec(specs["not_pairs"])
    assert load_spec(specs["kto"]).records[0]["label"] is False
