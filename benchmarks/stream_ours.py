"""One measurement of the 1.1B streaming benchmark in a fresh process (so peak RSS is its own).

    python benchmarks/stream_ours.py MODE MODEL_DIR SPLIT_DIR --prompt-ids IDS_JSON [--budget BYTES] [--cold]

MODE: ``plain`` (transformers, in memory: its weights stay memory-mapped from the safetensors
file; ``--owned`` copies them into ordinary memory, as ft-stream does with resident layers),
``read`` (the time to read the split's weight bytes once; with ``--budget``, only the files
ft-stream streams under that budget: what it rereads per token), ``ours`` (ft-stream under
--budget). ``--cold`` evicts the files from the page cache (posix_fadvise DONTNEED) before the
read, or before every generated token; for ``ours`` the layer already read ahead for the next
pass is dropped and evicted too. Peak RSS is the process's own (VmHWM). Prints one JSON line like
the peer runner (benchmarks/peers/stream_peer.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def evict(folder_or_paths, names: list[str] | None = None) -> None:
    """posix_fadvise DONTNEED on the split's files (``names`` of them), or on a list of paths."""
    if isinstance(folder_or_paths, Path):
        paths = [folder_or_paths / n for n in names] if names is not None else folder_or_paths.glob("*.safetensors")
    else:
        paths = folder_or_paths
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def streamed_files(folder: Path, budget: int | None) -> list[str]:
    """The layer files ft-stream rereads every pass under ``budget``."""
    from ft_stream import LayerwiseModel

    model = LayerwiseModel(folder, budget=budget, prefetch=1)
    names = [model._layer_file[i] for i in range(len(model.layers)) if i not in model.resident]
    model.close()
    return names


def drop_read_ahead(streamed) -> None:
    """Wait for the layers read ahead, hand their pages back and forget them: the next pass reads
    them again (cold, once evicted), as every other streamed layer."""
    for future in streamed._pending.values():
        future.result()
    for i in list(streamed._pending):
        streamed._mapped[streamed._layer_file[i]].release()
    streamed._pending.clear()


def read_once(folder_or_paths, names: list[str] | None = None) -> float:
    """Seconds to read the split's files (``names`` of them), or a list of paths, once."""
    if isinstance(folder_or_paths, Path):
        folder = folder_or_paths
        files = [folder / n for n in names] if names is not None else sorted(folder.glob("*.safetensors"))
    else:
        files = folder_or_paths
    view = memoryview(bytearray(8 << 20))  # 8 MB reads: the fastest chunk size measured here
    start = time.perf_counter()
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(view):
                pass
    return time.perf_counter() - start


def populate_once(paths: list[Path]) -> float:
    """Seconds to fault the files into memory the way ft-stream reads them: mmap, then
    MADV_POPULATE_READ (one call per file, the kernel's readahead at full size)."""
    import mmap

    advice = getattr(mmap, "MADV_POPULATE_READ", 22)
    start = time.perf_counter()
    for path in paths:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            mapped.madvise(advice)
    return time.perf_counter() - start


def fastest_read(folder: Path, names: list[str] | None, cold: bool) -> dict[str, float]:
    """Each way of reading the files once (evicted before each, when cold): the floor is the fastest."""
    paths = [folder / n for n in names] if names is not None else sorted(folder.glob("*.safetensors"))
    times = {}
    for method, read in (("readinto_8mb", read_once), ("mmap_populate", populate_once)):
        if cold:
            evict(paths)
        times[method] = read(paths)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["plain", "read", "ours"])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("split_dir", type=Path)
    parser.add_argument("--prompt-ids", type=Path, required=True)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--owned", action="store_true")
    args = parser.parse_args()

    import torch

    from ft_stream.bench import peak_rss_bytes, time_generation

    torch.set_num_threads(args.threads)
    if args.mode == "read":
        names = streamed_files(args.split_dir, args.budget) if args.budget is not None else None
        methods = fastest_read(args.split_dir, names, args.cold)
        what = "all weights" if names is None else f"the {len(names)} streamed layers"
        size = sum((args.split_dir / n).stat().st_size for n in names) if names is not None else None
        print(json.dumps({"tool": f"read {what} once ({'cold' if args.cold else 'warm'})",
                          "seconds": min(methods.values()), "methods": methods, "bytes": size,
                          "peak_rss_bytes": peak_rss_bytes()}))
        return
    ids = torch.tensor([json.loads(args.prompt_ids.read_text())])
    if args.mode == "plain":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.bfloat16).eval()
        if args.owned:  # out of the file mapping, into ordinary (transparent-huge-page) memory
            for param in model.parameters():
                param.data = param.data.clone()
        tool = f"transformers in memory ({'owned' if args.owned else 'mapped'})"
    else:
        from ft_stream import LayerwiseModel

        streamed = LayerwiseModel(args.split_dir, budget=args.budget)
        streamed.forward(ids[:, :2])  # the first pass reads and checks every file once
        model = streamed.model
        tool = f"ft-stream ({len(streamed.resident)}/{len(streamed.layers)} layers resident)"
    if args.cold:  # every token's pass starts with the split's files out of the page cache
        from transformers import StoppingCriteriaList

        def cold() -> None:
            if args.mode == "ours":
                drop_read_ahead(streamed)
            evict(args.split_dir)

        class Evict:
            def __call__(self, input_ids, scores, **kwargs):
                cold()
                return torch.zeros(input_ids.shape[0], dtype=torch.bool)

        original = model.generate

        def generate(*a, **kw):
            kw["stopping_criteria"] = StoppingCriteriaList([Evict(), *kw.get("stopping_criteria", [])])
            cold()
            return original(*a, **kw)

        model.generate = generate
    result = time_generation(model, ids, args.new_tokens)
    print(json.dumps({"tool": tool + (" cold" if args.cold else ""), "prefill_s": result.prefill_s,
                      "s_per_token": result.s_per_token, "peak_rss_bytes": result.peak_rss_bytes,
                      "tokens": result.tokens}))


if __name__ == "__main__":
    main()
