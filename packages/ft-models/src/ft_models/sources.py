"""Turn whatever the user typed as a model into something `from_pretrained` can load."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ft_core import FtError
from ft_models.aliases import user_aliases
from ft_models.embedded import EMBEDDED_MODELS
from ft_models.gguf_convert import converted_folder
from ft_models.hub import ensure_loadable

SourceKind = Literal["alias", "folder", "gguf", "hub"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model reference: what kind it is and where it points."""

    kind: SourceKind
    name: str
    location: str


def resolve_source(name: str) -> ModelSource:
    """Classify ``name`` as an alias, a local folder, a ``.gguf`` file or a hub id.

    Example:
        >>> resolve_source("smollm2-135m-instruct").kind
        'alias'
    """
    if name in EMBEDDED_MODELS:
        return ModelSource("alias", name, name)
    registered = user_aliases()
    if name in registered:
        return ModelSource("alias", name, registered[name])
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FtError(f"model folder {path} has no config.json; point at a saved model folder")
        return ModelSource("folder", name, str(path))
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FtError(f"GGUF file {path} does not exist")
        return ModelSource("gguf", name, str(path))
    if _HUB_ID.match(name) and not path.exists():
        return ModelSource("hub", name, name)
    known = ", ".join(sorted({*EMBEDDED_MODELS, *registered}))
    raise FtError(
        f"unknown model '{name}': not a known alias ({known}), a model folder, a .gguf file or a hub id (org/name)"
    )


def final_source(name: str) -> ModelSource:
    """``resolve_source``, following a user alias to what it names."""
    source = resolve_source(name)
    if source.kind == "alias" and name not in EMBEDDED_MODELS:
        return resolve_source(source.location)
    return source


def model_path(name: str) -> str:
    """A path or hub id for ``from_pretrained``; GGUF sources are converted once and cached."""
    source = resolve_source(name)
    if source.kind == "alias" and name not in EMBEDDED_MODELS:  # a user alias: its target
        return model_path(source.location)
    if source.kind == "alias":
        embedded = EMBEDDED_MODELS[name]
        return str(converted_folder(embedded.gguf_path(), name=embedded.alias))
    if source.kind == "gguf":
        return str(converted_folder(Path(source.location)))
    if source.kind == "hub":
        ensure_loadable(source.location)
    return source.location


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "pytorch_model.bin.index.json")


def check_folder(path: str, need: str) -> None:
    """For a model folder, an FtError when it lacks what loading it needs: its ``tokenizer`` files
    or its ``weights``. Other sources pass (transformers reports on those)."""
    folder = Path(path)
    if not folder.is_dir():
        return
    if need == "tokenizer" and not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise FtError(f"model folder {folder} has no tokenizer ({' or '.join(_TOKENIZER_FILES[:2])}); save the "
                      "tokenizer there (tokenizer.save_pretrained) or copy its files from the base model")
    if need == "weights" and not any(next(folder.glob(p), None) for p in _WEIGHT_PATTERNS):
        raise FtError(f"model folder {folder} has no weights (*.safetensors or pytorch_model.bin); point at a "
                      "folder that a model was saved to")
