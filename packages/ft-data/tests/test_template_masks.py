"""Label masks on six structurally different templates (our own jinja, written after each
family's published format): the labelled tokens decode to exactly the
assistant contents plus their end-of-turn marker, for random multi-turn conversations."""

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ft_data import tokenize_conversation
from ft_data.masking import IGNORE_INDEX
from ft_data.templates import NAMED_TEMPLATES, ChatFormat


@dataclass(frozen=True)
class Case:
    template: str | None  # None: the tokenizer's own (SmolLM2's ChatML that injects a default system prompt)
    answer_prefix: str
    end_of_turn: str


LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}"
    "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% set system = messages[0]['content'] if messages[0]['role'] == 'system' else '' %}"
    "{% for m in messages if m['role'] != 'system' %}"
    "{% if m['role'] == 'user' %}{{ '[INST] ' + (system + '\n\n' if loop.first and system else '') + m['content'] + ' [/INST]' }}"
    "{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}"
)
GEMMA = (  # no system role: the system text is folded into the first user turn
    "{{ bos_token }}{% set system = messages[0]['content'] if messages[0]['role'] == 'system' else '' %}"
    "{% for m in messages if m['role'] != 'system' %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (system + '\n\n' if loop.first and system else '') }}"
    "{{ m['content'] + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
PHI3 = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '<|end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

CASES = {
    "smollm2-chatml-default-system": Case(None, "", "<|im_end|>"),
    "chatml": Case("chatml", "", "<|im_end|>"),
    "llama3": Case(LLAMA3, "", "<|eot_id|>"),
    "mistral-inst": Case(MISTRAL, " ", "<|im_end|>"),  # eos_token of the SmolLM2 tokenizer
    "gemma-no-system": Case(GEMMA, "", "<end_of_turn>"),
    "phi3": Case(PHI3, "", "<|end|>"),
}

# Any assigned, printable unicode (this tokenizer drops control characters), tabs, newlines,
# empty strings and pure whitespace; '<' and '[' are left
# out so random text cannot spell a template's own markers.
content = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cn", "Co", "Cc"), exclude_characters="<["), max_size=24),
    st.sampled_from(["", " ", "\n", "\t", "  trailing  ", "ünïcødé 🌍", "multi\nline\n"]),
)


@st.composite
def conversations(draw):
    messages = [{"role": "system", "content": draw(content)}] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 3))):
        messages += [{"role": "user", "content": draw(content)}, {"role": "assistant", "content": draw(content)}]
    return messages


def fmt_for(tokenizer, case):
    if case.template is None:
        return ChatFormat.for_tokenizer(tokenizer)
    source = NAMED_TEMPLATES.get(case.template, case.template)
    tokens = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
    return ChatFormat(source, special_tokens=tokens)


def labelled_runs(tokenizer, row):
    runs, current = [], []
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    return [tokenizer.decode(r) for r in runs + ([current] if current else [])]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations(), last_only=st.booleans())
def test_labels_are_exactly_the_assistant_turns(smol_tokenizer, name, messages, last_only):
    case = CASES[name]
    fmt = fmt_for(smol_tokenizer, case)
    row = tokenize_conversation(smol_tokenizer, messages, fmt=fmt, train_on="last" if last_only else "all")
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    if last_only:
        answers = answers[-1:]
    assert labelled_runs(smol_tokenizer, row) == [case.answer_prefix + a + case.end_of_turn for a in answers]
    # nothing is lost: the tokens decode back to the template's own rendering
    assert smol_tokenizer.decode(row["input_ids"]) == fmt.render(messages)


def test_system_prompt_override_and_default():
    fmt = ChatFormat.named("chatml", system="Be brief.")
    with_system = [{"role": "system", "content": "Old"}, {"role": "user", "content": "Hi"}]
    assert fmt.apply_system(with_system)[0] == {"role": "system", "content": "Be brief."}
    assert len(fmt.apply_system(with_system)) == 2
    fmt = ChatFormat.named("chatml", default_system="Default.")
    assert fmt.apply_system(with_system)[0]["content"] == "Old"
    assert fmt.apply_system(with_system[1:])[0]["content"] == "Default."


def test_named_templates_render_generation_prompts():
    messages = [{"role": "user", "content": "Hi"}]
    assert ChatFormat.named("llama3").render(messages, generation_prompt=True).endswith(
        "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert ChatFormat.named("alpaca").render(messages, generation_prompt=True) == "### Instruction:\nHi\n\n### Response:\n"
    with pytest.raises(Exception, match="unknown template 'chatlm' \\(did you mean 'chatml'\\?\\)"):
        ChatFormat.named("chatlm")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations())
def test_two_render_route_equals_the_prefix_route(smol_tokenizer, name, messages):
    from ft_data.fast_spans import segments_by_markers
    from ft_data.masking import segments_by_prefixes

    fmt = fmt_for(smol_tokenizer, CASES[name])
    fast = segments_by_markers(fmt, messages)
    assert fast is not None  # these templates all take the fast route
    assert fast == segments_by_prefixes(fmt, messages)
