"""Run a transformers causal LM with its decoder layers read from a split folder during forward.

The model's own forward does all the work (embedding scale, rotary embeddings, masks, the Cache
object, logit soft-capping), so there is no per-architecture code: the decoder layers start on
the meta device; a forward pre-hook puts a layer's weights in just before it runs and a forward
hook takes them out just after. Layers that fit in the memory budget stay resident; the others
are memory-mapped views (no copy) that a prefetch thread faults in while the previous layer computes.
"""

from __future__ import annotations

import math
import os
import re
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

from ft_core import FtError
from ft_stream.compress import decompress
from ft_stream.layerfile import MappedFile, sha256_file
from ft_stream.skeleton import build_skeleton, decoder_layers, layer_prefixes
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


def format_size(n: float, up: bool = False) -> str:
    """``n`` bytes for people; ``up`` rounds up, for a least value that must itself be enough.

    Example:
        >>> format_size(131_001_000), format_size(131_001_000, up=True)
        ('131.00 MB', '131.01 MB')
    """
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            if unit == "B":
                return f"{math.ceil(n) if up else round(n)} B"
            return f"{(math.ceil(n * 100) / 100) if up else n:.2f} {unit}"
        n /= 1000
    raise AssertionError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: ``$FT_STREAM_DEVICE`` where set, else the first CUDA device where there is one,
    else the CPU.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if str(device) == "auto":
        device = os.environ.get("FT_STREAM_DEVICE", "auto")
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FtError(f"device {device} asked for, but torch {torch.__version__} sees no CUDA device; "
                      "use device='cpu' (or auto)")
    return device


def _free_device_memory(device: torch.device) -> int:
    """Bytes the GPU can give: 90% of what it has free now."""
    free, _ = torch.cuda.mem_get_info(device)
    return int(0.9 * free)


def _available_ram() -> int:
    """Bytes of host memory to pin: half of what Linux reports available (pinned pages cannot be
    swapped or reclaimed; the rest stays for the page cache and everything else)."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return 4 * 10**9


def _to_device(model: nn.Module, device: torch.device) -> None:
    """Every parameter and buffer not on meta (the embeddings, head, norms, rotary tables) onto
    ``device``; the decoder layers' meta parameters stay where they are."""
    moved: dict[int, nn.Parameter] = {}  # tied weights (embeddings and head) stay one tensor
    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if param is not None and param.device.type != "meta":
                if id(param) not in moved:
                    moved[id(param)] = nn.Parameter(param.data.to(device), requires_grad=False)
                module._parameters[name] = moved[id(param)]
        for name, buf in list(module._buffers.items()):
            if buf is not None and buf.device.type != "meta":
                module._buffers[name] = buf.to(device)


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

    ``device`` (``auto``: CUDA where there is one): on a GPU the layers are tiered
    (``ft_stream.tiers``): as many as ``gpu_budget`` holds beside the streaming buffers, a KV cache
    of ``context`` tokens and a ``prefill_chunk``-token prefill stay on the GPU; the next ones wait
    in pinned RAM up to ``cpu_budget``; the others are read from disk each pass. Both budgets
    default to what the machine has free. Streamed layers go through reused device buffers, copied
    on their own CUDA stream while the previous layer computes (``ft_stream.transfer``); there
    ``budget`` stands for ``gpu_budget`` when that is not given. On the CPU, ``budget`` (or
    ``cpu_budget``) is the one budget, as before. ``$FT_STREAM_DEVICE`` overrides ``auto``.

    Example:
        >>> model = LayerwiseModel.from_source("smollm2-135m-instruct", budget="200MB")  # doctest: +SKIP
        >>> model.generate(ids, max_new_tokens=20)  # doctest: +SKIP
        >>> big = LayerwiseModel("llama-7b-split", device="cuda", gpu_budget="4GiB")  # doctest: +SKIP
        >>> big.tiers.summary()  # doctest: +SKIP
        '3 layers on the GPU, 29 in pinned RAM, 0 from disk'
    """

    def __init__(self, folder: str | Path, *, budget: int | str | None = None, dtype: torch.dtype | None = None,
                 prefetch: int = 1, verify: bool = True, progress: bool = False, device: str | torch.device = "auto",
                 gpu_budget: int | str | None = None, cpu_budget: int | str | None = None, context: int = 4096,
                 prefill_chunk: int = 512, _tiered: bool = False):
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
        self.layers = decoder_layers(self.model, self.manifest["num_layers"])
        self.prefixes = layer_prefixes(self.model, self.manifest["num_layers"])
        self.verify = verify
        self._verified: set[str] = set()
        self._files = {f["name"]: f for f in self.manifest["files"]}
        self._mapped: dict[str, MappedFile] = {}
        self._layer_file = [f["name"] for f in self.manifest["files"] if f["kind"] == "layer"]
        self._index = {layer: i for i, layer in enumerate(self.layers)}
        self.prefetch = max(0, prefetch)
        self._pool = self._start_pool() if self.prefetch else None
        self._pending: dict[int, Future] = {}
        self.device = resolve_device(device)
        self.prefill_chunk = prefill_chunk
        self._load_rest()
        if self.device.type != "cpu" or _tiered:  # _tiered: tests run the GPU path on the CPU
            self._stream_on_device(budget if gpu_budget is None else gpu_budget, cpu_budget, context, progress)
            return
        self.tiers = None
        self.resident = self._plan(budget if cpu_budget is None else cpu_budget)
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
                    prefetch: int = 1, progress: bool = False, compress: str | None = None,
                    **options) -> LayerwiseModel:
        """Split ``source`` (alias, folder, .gguf, hub id, or a split folder; reused when up to date)
        and stream it; ``compress="int8"|"nf4"`` splits it with compressed layers (ft_stream.compress).
        ``options``: ``device``, ``gpu_budget``, ``cpu_budget``, ``context``, ``prefill_chunk``."""
        if (Path(source) / MANIFEST).is_file():
            return cls(source, budget=budget, dtype=dtype, prefetch=prefetch, progress=progress, **options)
        return cls(split(source, dtype=dtype, compress=compress, progress=progress), budget=budget,
                   prefetch=prefetch, progress=progress, **options)

    # -- checks and planning -------------------------------------------------------------------

    def _start_pool(self) -> ThreadPoolExecutor:
        """The reading thread, stopped by ``close`` or, at the latest, when the model is collected."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ft-stream-prefetch")
        weakref.finalize(self, pool.shutdown, wait=False)
        return pool

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

    def _memory(self, name: str, streamed: bool = False) -> int:
        """Bytes a file takes in memory: its weights (rebuilt, where compressed) and, while a
        compressed file streams, its mapped pages beside them."""
        f = self._files[name]
        if not self.manifest.get("compress"):
            return f["bytes"]
        return f.get("dense_bytes", f["bytes"]) + (f["bytes"] if streamed else 0)

    def _plan(self, budget: int | str | None) -> set[int]:
        """Layers kept resident: as many as fit beside the rest and the streaming working set."""
        rest = self._memory(REST)
        sizes = [self._memory(n) for n in self._layer_file]
        if budget is None:
            return set()
        budget = parse_size(budget)
        if rest + sum(sizes) <= budget:
            return set(range(len(sizes)))
        streamed = max(self._memory(n, streamed=True) for n in self._layer_file)
        working = (1 + self.prefetch) * streamed  # the layer computing and those read ahead
        smallest = rest + working
        if budget < smallest:
            raise FtError(f"budget {format_size(budget)} is too small: the smallest workable budget is "
                          f"{format_size(smallest, up=True)} (embeddings and head {format_size(rest)} + "
                          f"{1 + self.prefetch} streamed layers of {format_size(streamed)})")
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
        if self.manifest.get("compress"):
            tensors = decompress(tensors, self.dtype)
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

    # -- on a compute device (a GPU) ------------------------------------------------------------

    def _stream_on_device(self, gpu_budget, cpu_budget, context: int, progress: bool) -> None:
        """Tiers (GPU, pinned RAM, disk), the rest and the GPU's layers moved once, the device
        slots, and the hooks that stream the other layers through them."""
        import logging

        from ft_stream.tiers import plan_tiers, reserve_bytes
        from ft_stream.transfer import Transfer

        slots = max(2, self.prefetch + 1)
        names = self._layer_file
        itemsize = self.dtype.itemsize
        gpu = parse_size(gpu_budget) if gpu_budget is not None else _free_device_memory(self.device)
        host = parse_size(cpu_budget) if cpu_budget is not None else _available_ram()
        self.tiers = plan_tiers(self._memory(REST), [self._memory(n) for n in names], device_budget=gpu,
                                host_budget=host, slots=slots, streamed_sizes=[self._bytes(n) for n in names],
                                reserve=reserve_bytes(self.config, context, self.prefill_chunk, itemsize))
        self.resident = set(self.tiers.device)
        message = self.tiers.summary()
        logging.getLogger("ft_stream").info(message)
        if progress:
            import sys

            print(message, file=sys.stderr)
        _to_device(self.model, self.device)
        for i in sorted(self.tiers.device):
            self._install(i, {k: v.to(self.device) for k, v in self._owned(names[i]).items()})
        self._host = {i: self._pinned(names[i]) for i in sorted(self.tiers.pinned)}
        streamed = [i for i in range(len(names)) if i not in self.tiers.device]
        self._slot_of: dict[int, int] = {}
        self._turn = 0
        self._dense: list[dict] = [{} for _ in range(slots)]
        self._pool = self._pool or self._start_pool()
        if not streamed:
            self._transfer = None
            return
        template = self._tensors_stored(names[streamed[0]])
        self._transfer = Transfer(self.device, slots, template)
        self._slots = slots
        for layer in self.layers:
            layer.register_forward_pre_hook(self._before_layer_on_device)
            layer.register_forward_hook(self._after_layer_on_device)

    def _tensors_stored(self, name: str) -> dict[str, torch.Tensor]:
        """The file's tensors as stored (codes and scales where compressed), names without the
        layer prefix, as memory-mapped views."""
        prefix = self.prefixes[self._layer_file.index(name)]
        return {k.removeprefix(prefix): v for k, v in self._mapped_file(name).tensors().items()}

    def _pinned(self, name: str) -> dict[str, torch.Tensor]:
        """The layer as stored, copied into page-locked memory of its own size (plain memory on a
        CPU), its mapping handed back."""
        pin = self.device.type == "cuda"
        tensors = {k: torch.empty(v.shape, dtype=v.dtype, pin_memory=pin).copy_(v)
                   for k, v in self._tensors_stored(name).items()}
        self._mapped[name].release()
        return tensors

    def _start_copy(self, j: int) -> Future:
        """Put layer ``j`` into the next slot: from pinned RAM, or read from disk into a staging
        buffer first; on the reading thread, which also enqueues the device copy."""
        slot = self._turn % self._slots
        self._turn += 1
        self._slot_of[j] = slot
        name = self._layer_file[j]

        def job() -> None:
            host = self._host.get(j)
            if host is None:
                self._mapped_file(name).populate()
                host = self._transfer.stage(slot, self._tensors_stored(name))
                self._mapped[name].release()
            self._transfer.start(slot, host)

        return self._pool.submit(job)

    def _before_layer_on_device(self, layer: nn.Module, args) -> None:
        i = self._index[layer]
        if i in self.tiers.device:
            return
        future = self._pending.pop(i, None) or self._start_copy(i)
        future.result()
        slot = self._slot_of[i]
        stored = self._transfer.wait(slot)
        if self.manifest.get("compress"):
            from ft_stream.compress import decompress_into

            stored = decompress_into(self._dense[slot], stored, self.dtype)
        prefix = self.prefixes[i]
        self._install(i, {prefix + k: v for k, v in stored.items()})
        for j in self._streamed_after(i)[: self._slots - 1]:
            if j not in self._pending and j != i:
                self._pending[j] = self._start_copy(j)

    def _after_layer_on_device(self, layer: nn.Module, args, output) -> None:
        i = self._index[layer]
        if i in self.tiers.device:
            return
        self._transfer.done(self._slot_of.pop(i))
        prefix = self.prefixes[i]
        for name, param in list(layer.named_parameters()):
            _set_parameter(self.model, prefix + name, torch.empty_like(param, device="meta"))

    # -- running ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for ``input_ids`` (batch, seq), computed one layer at a time (on the compute
        device; returned there)."""
        input_ids = input_ids.to(self.device)
        attention_mask = attention_mask.to(self.device) if attention_mask is not None else None
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    @torch.inference_mode()
    def generate(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        """transformers' ``generate`` on the streamed model (KV cache, sampling, stop strings...).
        On a GPU, prompts longer than ``prefill_chunk`` are prefilled in chunks."""
        input_ids = input_ids.to(self.device)
        kwargs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        if self.tiers is not None and input_ids.shape[1] > self.prefill_chunk and "past_key_values" not in kwargs:
            kwargs["past_key_values"] = self.prefill(input_ids[:, :-1], kwargs.get("attention_mask"))
        return self.model.generate(input_ids, **kwargs)

    @torch.inference_mode()
    def prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """The KV cache of ``input_ids``, computed ``prefill_chunk`` tokens at a time, so a long
        prompt's activations stay within the GPU budget's reserve; ``generate`` continues from it."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.config)
        input_ids = input_ids.to(self.device)
        for start in range(0, input_ids.shape[1], self.prefill_chunk):
            end = min(start + self.prefill_chunk, input_ids.shape[1])
            mask = attention_mask[:, :end].to(self.device) if attention_mask is not None else None
            self.model(input_ids=input_ids[:, start:end], attention_mask=mask, past_key_values=cache, use_cache=True,
                       logits_to_keep=1)
        return cache

    def close(self) -> None:
        """Stop the reading thread (waiting for a read in flight). Also done by ``with`` and when
        the model is garbage-collected."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pending.clear()

    def __enter__(self) -> LayerwiseModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
