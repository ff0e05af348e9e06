"""Label masks on structurally different templates (our own jinja written after each family's
format, and the Llama 3 and Gemma templates in their published form, which `trim` contents): the
labelled tokens decode to exactly the assistant contents (trimmed where the template trims them)
plus their end-of-turn marker, for random multi-turn conversations."""

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
    trims: bool = False  # the template prints content | trim (the slower, general route handles it)
    system: bool = True  # the template accepts a system message


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

# As published with Meta-Llama-3-Instruct and Gemma-2-it: contents pass through `| trim`.
LLAMA3_PUBLISHED = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
GEMMA_PUBLISHED = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

CASES = {
    "smollm2-chatml-default-system": Case(None, "", "<|im_end|>"),
    "chatml": Case("chatml", "", "<|im_end|>"),
    "llama3": Case(LLAMA3, "", "<|eot_id|>"),
    "mistral-inst": Case(MISTRAL, " ", "<|im_end|>"),  # eos_token of the SmolLM2 tokenizer
    "gemma-no-system": Case(GEMMA, "", "<end_of_turn>"),
    "phi3": Case(PHI3, "", "<|end|>"),
    "llama3-published-trim": Case(LLAMA3_PUBLISHED, "", "<|eot_id|>", trims=True),
    "gemma2-published-trim": Case(GEMMA_PUBLISHED, "", "<end_of_turn>", trims=True, system=False),
}

# Any assigned, printable unicode (this tokenizer drops control characters), tabs, newlines,
# empty strings and pure whitespace; '<' and '[' are left
# out so random text cannot spell a template's own markers.
content = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cn", "Co", "Cc"), exclude_characters="<["), max_size=24),
    st.sampled_from(["", " ", "\n", "\t", "  trailing  ", "ünïcødé 🌍", "multi\nline\n"]),
)


@st.composite
def conversations(draw, system: bool = True):
    messages = [{"role": "system", "content": draw(content)}] if system and draw(st.booleans()) else []
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
@given(data=st.data(), last_only=st.booleans())
def test_labels_are_exactly_the_assistant_turns(smol_tokenizer, name, data, last_only):
    case = CASES[name]
    messages = data.draw(conversations(case.system))
    fmt = fmt_for(smol_tokenizer, case)
    row = tokenize_conversation(smol_tokenizer, messages, fmt=fmt, train_on="last" if last_only else "all")
    answers = [m["content"].strip() if case.trims else m["content"] for m in messages if m["role"] == "assistant"]
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
@given(data=st.data())
def test_two_render_route_equals_the_prefix_route(smol_tokenizer, name, data):
    from ft_data.fast_spans import segments_by_markers
    from ft_data.masking import segments_by_prefixes

    case = CASES[name]
    messages = data.draw(conversations(case.system))
    fmt = fmt_for(smol_tokenizer, case)
    fast = segments_by_markers(fmt, messages)
    # templates that trim contents: the marker route answers only where trimming changed nothing
    assert fast is not None or case.trims  # the others all take the fast route
    assert fast is None or fast == segments_by_prefixes(fmt, messages)


def test_a_trimmed_blank_answer_trains_only_the_end_of_turn_marker(smol_tokenizer):
    """Found by the property test: under Gemma's `| trim`, an answer of "\\n" was matched against the
    newline after `<end_of_turn>`, and that newline was trained too."""
    fmt = fmt_for(smol_tokenizer, CASES["gemma2-published-trim"])
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "\n"},
                {"role": "user", "content": "and?"}, {"role": "assistant", "content": " ok "}]
    row = tokenize_conversation(smol_tokenizer, messages, fmt=fmt)
    assert labelled_runs(smol_tokenizer, row) == ["<end_of_turn>", "ok<end_of_turn>"]
