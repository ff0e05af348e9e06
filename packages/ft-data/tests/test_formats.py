import json
import re

import pytest

from ft_core import FtError
from ft_data import load_records
from ft_data.formats import ShareGPTToMessages


def write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sharegpt_with_system_tools_and_function_calls(tmp_path):
    row = {"conversations": [{"from": "human", "value": "Weather in Oslo?"},
                             {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Oslo"}}'},
                             {"from": "observation", "value": "-3C"},
                             {"from": "gpt", "value": "It is -3C."}],
           "system": "Be brief.", "tools": '[{"name": "weather"}]'}
    record = load_records(write(tmp_path, "s.jsonl", [row])).records[0]
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert record["messages"][2]["tool_calls"][0]["function"] == {"name": "weather", "arguments": {"city": "Oslo"}}
    assert record["tools"] == [{"name": "weather"}]


def test_sharegpt_custom_tags():
    convert = ShareGPTToMessages(messages="messages", role_tag="role", content_tag="content", user_tag="user",
                                 assistant_tag="assistant")
    record = convert({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    assert record["messages"] == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def test_preference_rows_in_three_formats(tmp_path):
    alpaca = {"instruction": "Pick", "chosen": "good", "rejected": "bad"}
    sharegpt = {"conversations": [{"from": "human", "value": "Pick"}], "chosen": {"from": "gpt", "value": "good"},
                "rejected": {"from": "gpt", "value": "bad"}}
    openai = {"prompt": [{"role": "user", "content": "Pick"}], "chosen": [{"role": "assistant", "content": "good"}],
              "rejected": [{"role": "assistant", "content": "bad"}]}
    expected = {"prompt": [{"role": "user", "content": "Pick"}], "chosen": [{"role": "assistant", "content": "good"}],
                "rejected": [{"role": "assistant", "content": "bad"}]}
    for i, row in enumerate((alpaca, sharegpt, openai)):
        assert load_records(write(tmp_path, f"p{i}.jsonl", [row])).records == [expected]


def test_kto_rows_and_text_rows(tmp_path):
    kto = load_records(write(tmp_path, "k.jsonl", [{"instruction": "q", "output": "a", "kto_tag": False}])).records
    assert kto == [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "label": False}]
    assert load_records(write(tmp_path, "t.jsonl", [{"text": "doc"}])).records == [{"text": "doc"}]


@pytest.mark.parametrize("row, message", [
    ({"instruction": "q", "chosen": "same", "rejected": "same"}, "row 2: 'chosen' equals 'rejected'"),
    ({"instruction": "q", "output": "a", "kto_tag": "yes"}, "row 2: key 'kto_tag' must be true or false"),
    ({"conversations": [{"from": "bot", "value": "x"}]}, "row 2: conversations[0].from is 'bot'"),
])
def test_bad_rows_error_or_are_skipped_and_counted(tmp_path, row, message):
    good = {"instruction": "q", "output": "a"} if "conversations" not in row else \
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    path = write(tmp_path, "b.jsonl", [good, row, good])
    with pytest.raises(FtError, match=re.escape(message)):
        load_records(path)
    loaded = load_records(path, on_bad_row="skip")
    assert len(loaded.records) == 2 and loaded.rows == [1, 3]
    assert len(loaded.skipped) == 1 and message in loaded.skipped[0]
