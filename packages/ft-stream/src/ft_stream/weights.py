"""Read named tensors from a folder of safetensors files without loading whole files."""

from __future__ import annotations

import json
from pathlib import Path

from ft_core import FtError


class SafetensorsWeights:
    """Tensor name → file index over a single-file or sharded safetensors folder (mmap reads)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        index = self.folder / "model.safetensors.index.json"
        if index.is_file():
            self.files = {k: self.folder / v for k, v in json.loads(index.read_text())["weight_map"].items()}
        else:
            self.files = self._scan()

    def _scan(self) -> dict[str, Path]:
        from safetensors import safe_open

        files = sorted(self.folder.glob("*.safetensors"))
        if not files:
            raise FtError(f"{self.folder} has no .safetensors files")
        names = {}
        for path in files:
            with safe_open(path, "pt") as f:
                names.update(dict.fromkeys(f.keys(), path))
        return names

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def load(self, names: list[str]) -> dict:
        """The tensors ``names``, each file opened once."""
        from safetensors import safe_open

        by_file: dict[Path, list[str]] = {}
        for name in names:
            by_file.setdefault(self.files[name], []).append(name)
        tensors = {}
        for path, file_names in by_file.items():
            with safe_open(path, "pt") as f:
                tensors.update({n: f.get_tensor(n) for n in file_names})
        return tensors
