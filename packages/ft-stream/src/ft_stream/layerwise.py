"""Run a transformers causal LM with its decoder layers read from a split folder during forward.

The model's own forward does all the work (embedding scale, rotary embeddings, masks, the Cache
object, logit soft-capping), so there is no per-architecture code: the decoder layers start on
the meta device; a forward pre-hook puts a layer's weights in just before it runs and a forward
hook takes them out just after. Layers that fit in the memory budget stay resident; the others
are memory-mapped views (no copy) that a prefetch thread faults in while the previous layer computes.
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

from ft_core import FtError
from ft_stream.layerfile import MappedFile, sha256_file
from ft_stream.skeleton import build_skeleton, decoder_layers
from ft_stream.split import MANIFEST, REST, is_complete, read_manifest, split

_SIZE = re.compile(r"^\s*([\d.]+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str | int) -> int:
    """Bytes from ``2GB``, ``512MiB``, ``1.5g`` or a number.

    Example:
        >>> parse_size("2GB"), parse_size("512MiB")
        (2000000000, 536870912)
    """
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match or match.group(2) is not None and match.group(2).lower() not in _UNITS:
        raise FtError(f"cannot read size {text!r}; write it like 2GB, 512MiB or 1500000000")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def format_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError


def _set_parameter(root: nn.Module, name: str, tensor: torch.Tensor) -> None:
    owner_name, _, attr = name.rpartition(".")
    owner = root.get_submodule(owner_name) if owner_name else root
    owner._parameters[attr] = nn.Parameter(tensor, requires_grad=False)


class LayerwiseModel:
    """A causal LM whose decoder layers stream from a split folder under a memory budget.

    ``folder`` is a split (see ``ft_stream.split``) or any model folder (split on first use).
    ``budget`` (bytes or "2GB"): embeddings/head and as many layers as fit stay resident, the rest
    stream; None streams every layer. ``prefetch`` layers are read ahead on a thread.
    ``.model`` is the transformers model itself, so ``.model.generate()`` works with its KV cache.

    Example:
        >>> model = LayerwiseModel.from_source("smollm2-135m-instruct", budget="200MB")  # doctest: +SKIP
        >>> model.model.generate(ids, max_new_tokens=20)  # doctest: +SKIP
    """

    def __init__(self, folder: str | Path, *, budget: int | str | None = None, dtype: torch.dtype | None = None,
                 prefetch: int = 1, verify: bool = True, progress: bool = False):
        folder = Path(folder)
        if not (folder / MANIFEST).exists() and (folder / "config.json").is_file():
            folder = split(folder, progress=False)
        self.folder = folder
        self.manifest = self._checked_manifest(folder)
        from transformers import AutoConfig

        self.config = AutoConfig.from_pretrained(folder)
        stored = getattr(torch, self.manifest["dtype"].split("/")[0].removeprefix("torch."), torch.float32)
        self.dtype = dtype or stored
        self.model = build_skeleton(self.config, self.dtype)
        self.layers, self.prefixes = decoder_layers(self.model, self.manifest["num_layers"])
        self.verify = verify
        self._verified: set[str] = set()
        self._files = {f["name"]: f for f in self.manifest["files"]}
        self._mapped: dict[str, MappedFile] = {}
        self._layer_file = [f["name"] for f in self.manifest["files"] if f["kind"] == "layer"]
        self._index = {layer: i for i, layer in enumerate(self.layers)}
        self.prefetch = max(0, prefetch)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ft-stream-prefetch") if self.prefetch else None
        self._pending: dict[int, Future] = {}
        self._load_rest()
        self.resident = self._plan(budget)
        for i in sorted(self.resident):
            self._install(i, self._owned(self._layer_file[i]))
        self._first_pass = None
        if len(self.resident) == len(self.layers):  # nothing streams: no hooks, a plain model
            return
        if progress:  # the first pass reads (and checks) every streamed layer file: show it
            from tqdm.auto import tqdm

            self._first_pass = tqdm(total=len(self.layers), desc="first pass", unit="layer")
        for layer in self.layers:
            layer.register_forward_pre_hook(self._before_layer)
            layer.register_forward_hook(self._after_layer)

    @classmethod
    def from_source(cls, source: str, *, budget: int | str | None = None, dtype: torch.dtype | None = None,
                    prefetch: int = 1, progress: bool = False) -> LayerwiseModel:
        """Split ``source`` (alias, folder, .gguf, hub id, or a split folder; reused when up to date)
        and stream it."""
        if (Path(source) / MANIFEST).is_file():
            return cls(source, budget=budget, dtype=dtype, prefetch=prefetch, progress=progress)
        return cls(split(source, dtype=dtype, progress=progress), budget=budget, prefetch=prefetch, progress=progress)

    # -- checks and planning -------------------------------------------------------------------

    @staticmethod
    def _checked_manifest(folder: Path) -> dict:
        manifest = read_manifest(folder)
        if manifest is None:
            raise FtError(f"{folder} is not a split model folder (no {MANIFEST}); run `ft stream split MODEL {folder}`")
        if not is_complete(folder):
            broken = [f["name"] for f in manifest["files"]
                      if not (folder / f["name"]).is_file() or (folder / f["name"]).stat().st_size != f["bytes"]]
            raise FtError(f"{folder}: {', '.join(broken[:3])} missing or truncated; delete {folder} and split again "
                          f"(`ft stream split {manifest.get('source', 'MODEL')}`)")
        return manifest

    def _bytes(self, name: str) -> int:
        return self._files[name]["bytes"]

    def _plan(self, budget: int | str | None) -> set[int]:
        """Layers kept resident: as many as fit beside the rest and the streaming working set."""
        rest = self._bytes(REST)
        sizes = [self._bytes(n) for n in self._layer_file]
        if budget is None:
            return set()
        budget = parse_size(budget)
        if rest + sum(sizes) <= budget:
            return set(range(len(sizes)))
        working = (1 + self.prefetch) * max(sizes)  # the layer computing and those read ahead
        smallest = rest + working
        if budget < smallest:
            raise FtError(f"budget {format_size(budget)} is too small: the smallest workable budget is "
                          f"{format_size(smallest)} (embeddings and head {format_size(rest)} + {1 + self.prefetch} "
                          f"streamed layers of {format_size(max(sizes))})")
        resident, used = set(), smallest
        for i, size in enumerate(sizes):
            if used + size > budget:
                break
            resident.add(i)
            used += size
        return resident

    # -- reading -------------------------------------------------------------------------------

    def _mapped_file(self, name: str) -> MappedFile:
        if name not in self._mapped:
            path = self.folder / name
            if self.verify and name not in self._verified:
                if sha256_file(path) != self._files[name]["sha256"]:
                    raise FtError(f"{path} does not match its checksum in {MANIFEST} (corrupted); delete {self.folder} "
                                  f"and split again (`ft stream split {self.manifest.get('source', 'MODEL')}`)")
                self._verified.add(name)
            self._mapped[name] = MappedFile(path)
        return self._mapped[name]

    def _tensors(self, name: str, populate: bool) -> dict[str, torch.Tensor]:
        mapped = self._mapped_file(name)
        if populate:
            mapped.populate()
        tensors = mapped.tensors()
        return {k: v if v.dtype == self.dtype or not v.is_floating_point() else v.to(self.dtype)
                for k, v in tensors.items()}

    def _read(self, i: int) -> dict[str, torch.Tensor]:
        return self._tensors(self._layer_file[i], populate=True)

    def _owned(self, name: str) -> dict[str, torch.Tensor]:
        """Tensors copied out of the mapping into ordinary memory, the mapping's pages handed back.

        For what stays resident: ordinary allocations get transparent huge pages, page-cache
        mappings do not, and the difference is ~8% of a decode step (TLB misses)."""
        tensors = {k: v.clone() for k, v in self._tensors(name, populate=False).items()}
        self._mapped[name].release()
        return tensors

    def _load_rest(self) -> None:
        tensors = self._owned(REST)
        in_layers = tuple(self.prefixes)
        tied = getattr(self.model, "_tied_weights_keys", None) or {}
        tied = tied if isinstance(tied, dict) else {}
        for name, _ in self.model.named_parameters(remove_duplicate=False):
            if name.startswith(in_layers):
                continue
            source = name if name in tensors else tied.get(name)
            if source not in tensors:
                raise FtError(f"{self.folder}: tensor {name} is missing from {REST}; split the model again")
            _set_parameter(self.model, name, tensors[source])

    def _install(self, i: int, tensors: dict[str, torch.Tensor]) -> None:
        prefix = self.prefixes[i]
        for name, _ in self.layers[i].named_parameters():
            if prefix + name not in tensors:
                raise FtError(f"{self.folder / self._layer_file[i]}: tensor {prefix + name} is missing; split again")
            _set_parameter(self.model, prefix + name, tensors[prefix + name])

    def _streamed_after(self, i: int) -> list[int]:
        """The next ``prefetch`` streamed layers after ``i``, wrapping to the next pass."""
        n = len(self.layers)
        order = [(i + k) % n for k in range(1, n + 1)]
        return [j for j in order if j not in self.resident][: self.prefetch]

    # -- hooks -----------------------------------------------------------------------------------

    def _before_layer(self, layer: nn.Module, args) -> None:
        i = self._index[layer]
        if self._first_pass is not None:
            self._first_pass.update(1)
            if i == len(self.layers) - 1:
                self._first_pass.close()
                self._first_pass = None
        if i in self.resident:
            return
        future = self._pending.pop(i, None)
        self._install(i, future.result() if future is not None else self._read(i))
        if self._pool is not None:
            for j in self._streamed_after(i):
                if j not in self._pending and j != i:
                    self._pending[j] = self._pool.submit(self._read, j)

    def _after_layer(self, layer: nn.Module, args, output) -> None:
        i = self._index[layer]
        if i in self.resident:
            return
        prefix = self.prefixes[i]
        for name, param in list(layer.named_parameters()):
            _set_parameter(self.model, prefix + name, torch.empty_like(param, device="meta"))
        if i not in self._pending:  # not already being read ahead for the next pass
            mapped = self._mapped[self._layer_file[i]]
            # on the prefetch thread, in order with the reads (a release never overtakes a read)
            self._pool.submit(mapped.release) if self._pool is not None else mapped.release()

    # -- running ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for ``input_ids`` (batch, seq), computed one layer at a time."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    @torch.inference_mode()
    def generate(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        """transformers' ``generate`` on the streamed model (KV cache, sampling, stop strings...)."""
        return self.model.generate(input_ids, **kwargs)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pending.clear()
