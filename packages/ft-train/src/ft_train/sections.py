"""YAML sections built from the libraries' own definitions, so the two cannot drift: the
``adapter:`` section is ft_models.AdapterSpec's fields, ``quantization:`` is Quantization's,
``model:`` is ft_models.load_model's keyword parameters, ``data:`` ft_data.build_dataset's; the
choices are the libraries' constants (attention, RoPE scalings, data formats, train_on)."""

from __future__ import annotations

import dataclasses
import inspect
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


def _section(name: str, params: list[tuple[str, Any, Any]], *, choices: dict[str, Sequence] | None,
             bounds: dict[str, dict] | None, base: type[Section], doc: str | None, **extra: Any) -> type[Section]:
    fields = {}
    for key, hint, default in params:
        hint = choice(choices[key]) if choices and key in choices else _yaml_type(hint)
        limits = (bounds or {}).get(key, {})
        fields[key] = (hint, Field(default=list(default) if isinstance(default, tuple) else default, **limits))
    return create_model(name, __base__=base, __doc__=doc, **fields, **extra)


def section_from(cls: type, name: str, *, choices: dict[str, Sequence] | None = None, skip: Sequence[str] = (),
                 bounds: dict[str, dict] | None = None, doc: str | None = None) -> type[Section]:
    """A strict YAML section with ``cls``'s (a dataclass) fields, types and defaults; ``choices``
    narrows string fields to a library's allowed values, ``bounds`` adds ranges (``{"gt": 0}``)."""
    hints = typing.get_type_hints(cls)
    params = [(f.name, hints[f.name], f.default if f.default is not dataclasses.MISSING else f.default_factory())
              for f in dataclasses.fields(cls) if f.name not in skip]
    return _section(name, params, choices=choices, bounds=bounds, base=Section, doc=doc or cls.__doc__)


def section_from_signature(func: Any, name: str, *, skip: Sequence[str] = (),
                           choices: dict[str, Sequence] | None = None, bounds: dict[str, dict] | None = None,
                           base: type[Section] = Section, doc: str | None = None, **extra: Any) -> type[Section]:
    """A strict YAML section with the keyword-only parameters of ``func`` (their types and
    defaults), less ``skip``; ``extra`` adds fields the library function does not have, as
    pydantic's ``create_model`` takes them."""
    hints = typing.get_type_hints(func)
    params = [(p.name, hints[p.name], p.default) for p in inspect.signature(func).parameters.values()
              if p.kind is p.KEYWORD_ONLY and p.name not in skip]
    return _section(name, params, choices=choices, bounds=bounds, base=base, doc=doc, **extra)
