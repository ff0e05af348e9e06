"""YAML sections built from the libraries' own definitions, so the two cannot drift: the
``adapter:`` section is ft_models.AdapterSpec's fields, ``quantization:`` is Quantization's, the
choices are the libraries' constants (attention, RoPE scalings, data formats)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from ft_train.trainer_args import as_number


def _number_or_as_is(value: Any) -> Any:
    number = as_number(value)
    return value if number is None else number


# A float that also takes what YAML leaves as a string ('1e-4'); strict otherwise (no bools).
Number = Annotated[float, BeforeValidator(_number_or_as_is)]


class Section(BaseModel):
    # strict: `r: true` is not r=1, `cutoff_len: "512"` is not 512
    model_config = ConfigDict(extra="forbid", strict=True)


def choice(values: Sequence) -> Any:
    """``Literal[...]`` of ``values`` (a library's tuple of allowed names)."""
    return Literal[tuple(values)]


def _yaml_type(hint: Any) -> Any:
    """The dataclass field's type as YAML gives it: floats may be numeric strings, sequences are lists."""
    if hint is float:
        return Number
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_yaml_type(a) for a in args)]  # noqa: UP007 (built from a tuple)
    if origin in (Sequence, list, tuple) or (isinstance(origin, type) and issubclass(origin, Sequence)
                                              and origin is not str):
        return list[args[0]] if args else list
    return hint


def section_from(cls: type, name: str, *, choices: dict[str, Sequence] | None = None, skip: Sequence[str] = (),
                 doc: str | None = None) -> type[Section]:
    """A strict YAML section with ``cls``'s (a dataclass) fields, types and defaults; ``choices``
    narrows string fields to a library's allowed values."""
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        hint = choice(choices[f.name]) if choices and f.name in choices else _yaml_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        fields[f.name] = (hint, Field(default=list(default) if isinstance(default, tuple) else default))
    return create_model(name, __base__=Section, __doc__=doc or cls.__doc__, **fields)
