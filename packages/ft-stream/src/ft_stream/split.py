"""Split a checkpoint into one safetensors file per decoder layer plus one for the rest.

The folder also holds the config, generation config and tokenizer files, and a ``manifest.json``
(files, sizes, sha256, dtype, architecture, source fingerprint, transformers version). It is
written to a temporary folder and renamed into place, so a crash never leaves a half split; a
split whose manifest does not match the source, the dtype or the files on disk is redone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import metadata
from pathlib import Path

import torch

from ft_core import FtError, atomic_dir, atomic_write_text, check_output_dir, ft_home
from ft_stream.compress import check_method
from ft_stream.compress import compress as compress_tensors
from ft_stream.layerfile import sha256_file
from ft_stream.skeleton import build_skeleton, layer_prefixes

FORMAT = 1
MANIFEST = "manifest.json"
REST = "rest.safetensors"
_SIDE_FILES = ("*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken")


def layer_file(i: int) -> str:
    return f"layer_{i:04d}.safetensors"


def _fingerprint(folder: Path, dtype: torch.dtype | None, compress: str | None = None) -> str:
    digest = hashlib.sha256(f"{FORMAT}:{dtype}".encode() + (f":{compress}".encode() if compress else b""))
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.suffix == ".safetensors" or path.name == "config.json"):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


_MANIFEST_KEYS = {"format", "files", "num_layers", "layer_prefixes", "dtype"}
_FILE_KEYS = {"name", "kind", "bytes", "sha256"}


def read_manifest(folder: Path) -> dict | None:
    """The split's manifest; None if there is none, an FtError if it is damaged."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        ok = isinstance(manifest, dict) and _MANIFEST_KEYS <= manifest.keys() and isinstance(manifest["files"], list) \
            and all(isinstance(f, dict) and _FILE_KEYS <= f.keys() for f in manifest["files"])
        problem = "" if ok else "keys are missing"
    except (OSError, ValueError) as e:  # unreadable, not UTF-8, not JSON
        problem = str(e).split("\n")[0]
    if problem:
        raise FtError(f"{path} is damaged ({problem}); delete {folder} and split again (`ft stream split MODEL {folder}`)")
    return manifest


def is_complete(folder: Path, fingerprint: str | None = None) -> bool:
    """A finished split (of ``fingerprint``'s source, when given): manifest and file sizes agree."""
    try:
        manifest = read_manifest(folder)
    except FtError:
        return False
    if manifest is None or manifest.get("format") != FORMAT:
        return False
    if fingerprint and manifest.get("source_fingerprint") != fingerprint:
        return False
    return all((folder / f["name"]).is_file() and (folder / f["name"]).stat().st_size == f["bytes"]
               for f in manifest["files"])


def _tensor_groups(model, source: Path, prefixes: list[str]):
    """(checkpoint reader, {file: tensor names}) with the model's own parameter names. Where the
    checkpoint's names are the model's, tensors are copied one layer at a time; where transformers
    converts them at load (fused MoE experts), the model is loaded once and its state dict split."""
    from ft_stream.weights import SafetensorsWeights

    weights = SafetensorsWeights(source)
    wanted = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    tied = getattr(model, "_tied_weights_keys", None) or {}
    tied = tied if isinstance(tied, dict) else {}
    names = {n: (n if n in weights else tied.get(n)) for n in wanted}
    if all(v is not None and v in weights for v in names.values()):
        read = weights.load
        needed = set(names.values())
    else:
        from transformers import AutoModelForCausalLM

        loaded = AutoModelForCausalLM.from_pretrained(source, dtype="auto")
        state = dict(loaded.state_dict())
        read = lambda keys: {k: state[k] for k in keys}  # noqa: E731
        needed = set(state)
    groups = {layer_file(i): sorted(n for n in needed if n.startswith(p)) for i, p in enumerate(prefixes)}
    in_layers = {n for g in groups.values() for n in g}
    groups[REST] = sorted(n for n in needed if n not in in_layers)
    return read, groups


def split(source: str | Path, out_dir: str | Path | None = None, *, dtype: torch.dtype | None = None,
          compress: str | None = None, progress: bool = True, force: bool = False) -> Path:
    """Split ``source`` (alias, folder, .gguf or hub id) into ``out_dir`` (default: under
    ``$FT_HOME/stream``); an up-to-date split is reused. ``dtype`` converts the weights;
    ``compress="int8"|"nf4"`` stores the decoder layers' weight matrices compressed (ft_stream.compress).
    ``out_dir`` must be new, empty or an earlier split (``force`` replaces anything else) and may
    not hold the source.

    Example:
        >>> folder = split("smollm2-135m-instruct", dtype=torch.bfloat16)  # doctest: +SKIP
        >>> sorted(p.name for p in folder.iterdir())[:3]  # doctest: +SKIP
        ['chat_template.jinja', 'config.json', 'generation_config.json']
    """
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformers import AutoConfig

    from ft_models import model_path

    compress = check_method(compress)
    path = Path(model_path(str(source)))
    fingerprint = _fingerprint(path, dtype, compress)
    out = Path(out_dir) if out_dir else ft_home() / "stream" / f"{path.name}-{fingerprint}"
    if is_complete(out, fingerprint):
        return out
    out = check_output_dir(out, force=force or out_dir is None, sources=[path])  # $FT_HOME/stream is ours
    config = AutoConfig.from_pretrained(path)
    skeleton = build_skeleton(config, torch.float32)  # on meta: the dtype only matters for the MoE route
    prefixes = layer_prefixes(skeleton)
    read, groups = _tensor_groups(skeleton, path, prefixes)
    files, dtypes = [], set()
    with atomic_dir(out, force=force or out_dir is None, sources=[path], made_by="ft stream split") as tmp:
        for name, keys in tqdm(groups.items(), desc=f"splitting {path.name}", unit="file", disable=not progress):
            tensors = {k: (t.to(dtype) if dtype else t).contiguous() for k, t in read(keys).items()}
            dtypes |= {str(t.dtype) for t in tensors.values() if t.is_floating_point()}
            dense = sum(t.numel() * t.element_size() for t in tensors.values())  # in memory, once rebuilt
            kind = "rest" if name == REST else "layer"
            if compress and kind == "layer":
                tensors = compress_tensors(tensors, compress)
            save_file(tensors, tmp / name)
            files.append({"name": name, "kind": kind, "layer": None if kind == "rest" else int(name[6:10]),
                          "bytes": (tmp / name).stat().st_size, "dense_bytes": dense,
                          "sha256": sha256_file(tmp / name), "tensors": len(tensors)})
        for pattern in _SIDE_FILES:
            for side in path.glob(pattern):
                if side.name not in ("model.safetensors.index.json", MANIFEST, "ft-converted.json"):
                    shutil.copy2(side, tmp / side.name)
        stored = {f["name"]: f for f in files}
        manifest = {"format": FORMAT, "model_type": config.model_type, "architecture": type(skeleton).__name__,
                    "num_layers": len(prefixes), "layer_prefixes": prefixes,
                    "dtype": "/".join(sorted(dtypes)), "compress": compress, "source": str(source),
                    "source_path": str(path.resolve()),
                    "source_fingerprint": fingerprint, "transformers": metadata.version("transformers"),
                    "ft_stream": metadata.version("ft-stream"),
                    "files": [stored[layer_file(i)] for i in range(len(prefixes))] + [stored[REST]]}
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=1))
    return out
