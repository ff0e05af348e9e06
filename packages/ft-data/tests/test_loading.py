import json

import pytest

from ft_core import FtError
from ft_data import load_conversations


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_alpaca_json_with_system_and_history(tmp_path):
    rows = [{"instruction": "Add", "input": "2 and 3", "output": "5", "system": "Be terse.",
             "history": [["Hi", "Hello"]]}]
    path = write(tmp_path, "a.json", json.dumps(rows))
    assert load_conversations(path) == [[
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Add\n\n2 and 3"}, {"role": "assistant", "content": "5"},
    ]]


def test_openai_jsonl(tmp_path):
    line = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
                         {"role": "assistant", "content": "A"}]}
    path = write(tmp_path, "o.jsonl", json.dumps(line) + "\n\n" + json.dumps(line) + "\n")
    assert load_conversations(path) == [line["messages"]] * 2


@pytest.mark.parametrize("name, text, expected", [
    ("a.jsonl", '{"instruction": "x", "output": "y"}\n{"instruction": "x"}\n',
     "a.jsonl row 2: missing key 'output'"),
    ("b.jsonl", '{"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}\n',
     "b.jsonl row 1: messages[1].role is 'bot'; expected one of system, user, assistant, tool"),
    ("c.jsonl", '{"messages": []}\n', "c.jsonl row 1: key 'messages' must be a non-empty list"),
    ("d.jsonl", '{"messages": [{"role": "user", "content": "q"}]}\n{"messages": [\n',
     "d.jsonl row 2: malformed JSON"),
    ("e.json", '[{"instruction": "x", "output": "y"},', "e.json line 1 column 38: malformed JSON (Expecting value)"),
    ("f.jsonl", '{"question": "x"}\n', "f.jsonl row 1: cannot tell the format from keys (question)"),
    ("p.jsonl", '{"prompt": "x"}\n', "p.jsonl row 1: key 'prompt' has no answer ('completion', or 'chosen' and"),
    ("g.jsonl", '{"messages": [{"role": "user", "content": "q"}]}\n',
     "g.jsonl row 1: key 'messages' has no assistant message to learn from (rows without an answer serve only "
     "pt, as documents, and the online stages ppo and grpo)"),
])
def test_bad_rows_name_file_row_and_key(tmp_path, name, text, expected):
    path = write(tmp_path, name, text)
    with pytest.raises(FtError) as info:
        load_conversations(path)
    assert expected in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FtError, match="data file .*nope.jsonl does not exist"):
        load_conversations(tmp_path / "nope.jsonl")


def test_unknown_format_suggests(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"instruction": "x", "output": "y"}\n')
    with pytest.raises(FtError, match="unknown data format 'alpacca' \\(did you mean 'alpaca'\\?\\)"):
        load_conversations(path, "alpacca")


def test_csv_and_parquet_files_load_like_json(tmp_path):
    import datasets

    from ft_data import load_records

    (tmp_path / "a.csv").write_text("instruction,output\nq1,a1\nq2,a2\n")
    datasets.Dataset.from_dict({"instruction": ["q3"], "output": ["a3"]}).to_parquet(str(tmp_path / "b.parquet"))
    users = [r["messages"][0]["content"] for name in ("a.csv", "b.parquet")
             for r in load_records(tmp_path / name).records]
    assert users == ["q1", "q2", "q3"]
