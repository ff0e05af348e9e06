"""Which templates provably print contents untouched (one render per conversation suffices),
and the sandbox keeps refusing what it refused before its verdicts were cached."""

import jinja2
import pytest

from ft_data._compat import compile_chat_template
from ft_data.template_check import passes_contents_through
from ft_data.templates import NAMED_TEMPLATES

LOOP = "{% for m in messages %}{BODY}{% endfor %}"

PASS_THROUGH = {
    "concatenated": LOOP.replace("{BODY}", "{{ '<|' + m['role'] + '|>' + m['content'] + '\\n' }}"),
    "tilde and attribute": LOOP.replace("{BODY}", "{{ m.role ~ ': ' ~ m.content }}"),
    "counting and slicing": "{{ messages|length }}{% for m in messages[1:] %}{{ m['content'] }}{% endfor %}",
    "tools as json": "{% if tools %}{{ tools|tojson }}{% endif %}" + LOOP.replace("{BODY}", "{{ m['content'] }}"),
    "role tests": LOOP.replace("{BODY}", "{% if m['role'] == 'user' and loop.first %}U{% endif %}{{ m['content'] }}"),
}
REWRITES_OR_INSPECTS = {
    "filtered": LOOP.replace("{BODY}", "{{ m['content'] | trim }}"),
    "tested": LOOP.replace("{BODY}", "{% if m.content %}x{% endif %}{{ m.content }}"),
    "type test": LOOP.replace("{BODY}", "{% if m.content is string %}{{ m.content }}{% endif %}"),
    "aliased": LOOP.replace("{BODY}", "{% set c = m.content %}{{ c }}"),
    "method": LOOP.replace("{BODY}", "{{ m.content.split('x')[0] }}"),
    "whole message as json": LOOP.replace("{BODY}", "{{ m|tojson }}"),
    "first message as json": "{{ messages[0]|tojson }}",
    "dict items": LOOP.replace("{BODY}", "{% for k, v in m.items() %}{{ v|trim }}{% endfor %}"),
    "get": LOOP.replace("{BODY}", "{{ m.get('content')|trim }}"),
    "variable key": LOOP.replace("{BODY}", "{% for k in m %}{{ m[k]|trim }}{% endfor %}"),
    "namespace": "{% set ns = namespace(m=none) %}" + LOOP.replace("{BODY}", "{% set ns.m = m %}") + "{{ ns.m|tojson }}",
    "loop neighbour": LOOP.replace("{BODY}", "{{ loop.previtem|tojson }}"),
    "macro": "{% macro r(m) %}{{ m.content }}{% endmacro %}" + LOOP.replace("{BODY}", "{{ r(m)|trim }}"),
    "picked": "{{ (messages|last).content|trim }}",
    "renamed list": "{% set ms = messages %}{% for m in ms %}{{ m|string }}{% endfor %}",
    "conditional": LOOP.replace("{BODY}", "{{ m.content if m.role == 'user' else '' }}"),
    "generation block": LOOP.replace("{BODY}", "{% generation %}{{ m.content }}{% endgeneration %}"),
}


@pytest.mark.parametrize("name", list(PASS_THROUGH))
def test_templates_that_print_contents_as_is(name):
    assert passes_contents_through(PASS_THROUGH[name])


@pytest.mark.parametrize("name", list(REWRITES_OR_INSPECTS))
def test_templates_that_could_change_or_look_at_contents_are_not_vouched_for(name):
    assert not passes_contents_through(REWRITES_OR_INSPECTS[name])


def test_named_templates_take_the_one_render_route():
    assert all(passes_contents_through(source) for source in NAMED_TEMPLATES.values())


@pytest.mark.parametrize("escape", ["{{ messages.append(1) }}", "{{ messages.__class__.__mro__ }}",
                                    "{% for m in messages %}{{ m.clear() }}{% endfor %}"])
def test_cached_sandbox_verdicts_still_refuse_unsafe_attributes(escape):
    template = compile_chat_template(escape)
    for _ in range(2):  # the second render answers from the cache
        with pytest.raises(jinja2.exceptions.SecurityError):
            template.render(messages=[{"role": "user", "content": "x"}])
