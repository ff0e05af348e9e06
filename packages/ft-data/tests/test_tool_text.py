"""Tool calls and tool lists under chat templates that drop them (ft_data.tool_text)."""

import json

import pytest

from ft_data import build_dataset
from ft_data.masking import IGNORE_INDEX
from ft_data.templates import ChatFormat
from ft_data.tool_text import inline_tools, renders_tool_calls, renders_tools

TOOLS = [{"name": "get_weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
CALL = {"name": "get_weather", "arguments": {"city": "Oslo"}}
ROW = {"conversations": [{"from": "human", "value": "Weather in Oslo?"},
                         {"from": "function_call", "value": json.dumps(CALL)},
                         {"from": "observation", "value": "{\"temp\": 3}"},
                         {"from": "gpt", "value": "It is 3 degrees."}],
       "tools": json.dumps(TOOLS)}
NATIVE = ("{% if tools %}TOOLS {{ tools | tojson }}\n{% endif %}"
          "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}"
          "{% for c in m.tool_calls or [] %}CALL {{ c.function.name }}{% endfor %}\n{% endfor %}")


def test_the_probes_tell_templates_that_render_tools_from_those_that_drop_them(smol_tokenizer):
    smol = ChatFormat.for_tokenizer(smol_tokenizer)  # SmolLM2's template reads content and role only
    assert not renders_tool_calls(smol) and not renders_tools(smol)
    assert renders_tool_calls(ChatFormat(NATIVE)) and renders_tools(ChatFormat(NATIVE))
    assert not renders_tool_calls(ChatFormat.named("chatml"))


def test_a_template_that_drops_tool_calls_trains_them_as_text(smol_tokenizer, tmp_path):
    """SmolLM2's template rendered a function_call turn as an empty assistant turn: the model
    learned to answer nothing where it should call the tool, and never saw the tools."""
    path = tmp_path / "tools.jsonl"
    path.write_text(json.dumps(ROW) + "\n")
    row = build_dataset(smol_tokenizer, [(path, "sharegpt")], stage="sft", cache=False).dataset[0]
    trained = smol_tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True)
                                     if label != IGNORE_INDEX])
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert trained == f"{call}<|im_end|>It is 3 degrees.<|im_end|>"
    text = smol_tokenizer.decode(row["input_ids"])
    user_turn = text.split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
    assert user_turn.startswith("Tools you may call") and user_turn.endswith("</tool_call>.\n\nWeather in Oslo?")
    assert '{"name": "get_weather", "description": "Weather of a city"' in user_turn


def test_records_stay_as_they_are_where_the_template_renders_tools():
    record = {"messages": [{"role": "user", "content": "q"},
                           {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": CALL}]}],
              "tools": TOOLS}
    assert inline_tools(record, ChatFormat(NATIVE)) is record
    inlined = inline_tools(record, ChatFormat.named("chatml"))
    assert "tool_calls" not in inlined["messages"][1] and "tools" not in inlined
    first = inlined["messages"][0]
    assert first["role"] == "user" and first["content"].startswith("Tools you may call") and first["content"].endswith("\n\nq")
    assert record["messages"][1]["tool_calls"]  # the caller's record is not changed


@pytest.mark.parametrize("value", [json.dumps([CALL, {"name": "get_time", "arguments": {}}])])
def test_a_function_call_turn_may_hold_several_calls(value):
    from ft_data.formats.sharegpt import ShareGPTToMessages

    row = {"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": value},
                             {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]}
    calls = ShareGPTToMessages()(row)["messages"][1]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
