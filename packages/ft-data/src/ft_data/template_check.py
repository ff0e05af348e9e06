"""Does a chat template pass message contents through untouched? Read from its jinja syntax tree.

When every read of a message's ``content`` is printed as is (alone or joined with ``+``/``~``) and
no message is handed whole to a filter, test or call, the template's control flow cannot depend
on contents and its output holds each content verbatim. Then a render with marked contents,
markers stripped, *is* the plain render, and one render per conversation is enough
(ft_data.fast_spans). Anything the check cannot vouch for answers False: never a wrong yes.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import nodes

_CAPTURING = (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock, nodes.Include, nodes.Import,
              nodes.FromImport, nodes.Extends, nodes.Block)
_COUNTING = {"length", "count"}  # filters whose result does not depend on what the messages hold
_PICKING = {"first", "last"}  # filters that return one of the messages
# attributes that reach contents without naming them (dict methods, the loop's neighbours)
_OPAQUE_ATTRS = {name for name in dir(dict) if not name.startswith("_")} | {"previtem", "nextitem", "cycle"}


def _key(node: nodes.Getitem | nodes.Getattr):
    if isinstance(node, nodes.Getattr):
        return node.attr
    return node.arg.value if isinstance(node.arg, nodes.Const) else node.arg  # a node: unknown key


def _is_content(node) -> bool:
    return isinstance(node, (nodes.Getitem, nodes.Getattr)) and _key(node) == "content"


class _Check:
    def __init__(self, tree: nodes.Template):
        self.derived = {"messages"}  # names that may hold messages (or lists of them)
        self._find_derived(tree)

    def _find_derived(self, tree) -> None:
        bindings = [(n.target, n.iter) for n in tree.find_all(nodes.For)]
        bindings += [(n.target, n.node) for n in tree.find_all(nodes.Assign)]
        changed = True
        while changed:
            changed = False
            for target, value in bindings:
                if self.holds_messages(value):
                    for name in target.find_all(nodes.Name) if not isinstance(target, nodes.Name) else [target]:
                        if name.name not in self.derived:
                            self.derived.add(name.name)
                            changed = True

    def holds_messages(self, node) -> bool:
        """Whether an expression may evaluate to a message or a list of messages."""
        if isinstance(node, nodes.Name):
            return node.name in self.derived
        if isinstance(node, (nodes.Getitem, nodes.Getattr)):
            return not isinstance(_key(node), str) and self.holds_messages(node.node)  # an index or slice
        if isinstance(node, nodes.Filter):
            return node.name in _PICKING and node.node is not None and self.holds_messages(node.node)
        if isinstance(node, nodes.CondExpr):
            return self.holds_messages(node.expr1) or (node.expr2 is not None and self.holds_messages(node.expr2))
        return False

    def ok(self, node, printed: bool = False) -> bool:
        """``printed``: the value of ``node`` goes straight into the output."""
        if isinstance(node, _CAPTURING):
            return False
        if _is_content(node):
            return printed and self.ok_base(node.node)
        if isinstance(node, nodes.Const):
            return node.value != "content"
        if isinstance(node, nodes.Output):
            return all(self.ok(child, printed=True) for child in node.nodes)
        if isinstance(node, nodes.Add):
            return self.ok(node.left, printed) and self.ok(node.right, printed)
        if isinstance(node, nodes.Concat):
            return all(self.ok(child, printed) for child in node.nodes)
        if self.holds_messages(node):  # a message in any other place (tojson, a test, a call): cannot vouch
            return False
        if isinstance(node, (nodes.Getitem, nodes.Getattr)):
            return self.ok_base(node.node) and self.ok_key(node)
        if isinstance(node, nodes.For):
            return (self.ok_base(node.iter) and all(self.ok(c) for c in node.body + node.else_)
                    and (node.test is None or self.ok(node.test)))
        if isinstance(node, nodes.Assign):
            if self.holds_messages(node.node):  # tracked only when bound to plain names
                targets = node.target.items if isinstance(node.target, nodes.Tuple) else [node.target]
                return self.ok_base(node.node) and all(isinstance(t, nodes.Name) for t in targets)
            return self.ok(node.node)
        if isinstance(node, nodes.Filter) and node.name in _COUNTING and node.node is not None:
            return self.ok_base(node.node) and not node.args and not node.kwargs
        return all(self.ok(child) for child in node.iter_child_nodes())

    def ok_base(self, node) -> bool:
        """A subscripted or iterated expression: messages may be used here, not their contents."""
        if self.holds_messages(node) and isinstance(node, (nodes.Getitem, nodes.Getattr)):
            return self.ok_base(node.node) and self.ok_key(node)
        if isinstance(node, nodes.Filter) and node.name in _PICKING | _COUNTING and node.node is not None:
            return self.ok_base(node.node) and not node.args and not node.kwargs
        return isinstance(node, nodes.Name) or self.ok(node)

    def ok_key(self, node) -> bool:
        if isinstance(node, nodes.Getattr):
            return node.attr not in _OPAQUE_ATTRS
        return node.arg.value != "content" if isinstance(node.arg, nodes.Const) else self.ok(node.arg)


@lru_cache(maxsize=64)
def passes_contents_through(source: str) -> bool:
    """True when rendering cannot depend on, or alter, any message's content (see module doc).

    Example:
        >>> passes_contents_through("{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% endfor %}")
        True
        >>> passes_contents_through("{% for m in messages %}{{ m['content'] | trim }}{% endfor %}")
        False
    """
    from ft_data._compat import compile_chat_template

    try:
        tree = compile_chat_template(source).environment.parse(source)
    except Exception:  # a template our environment cannot parse: the general route decides
        return False
    return _Check(tree).ok(tree)
