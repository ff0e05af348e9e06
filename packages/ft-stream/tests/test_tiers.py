"""Tiers from two budgets, and the GPU streaming path (slots, staging, pinned tier, compressed
layers) run synchronously on the CPU: the same logits as the model in memory."""

import json
import re

import pytest
import torch

from ft_core import FtError
from ft_stream import LayerwiseModel, parse_size, split
from ft_stream.tiers import plan_tiers


def test_layers_fill_the_gpu_then_pinned_ram_then_disk():
    tiers = plan_tiers(100, [10] * 8, device_budget=150, host_budget=50, slots=2, reserve=10)
    assert (tiers.device, tiers.pinned, tiers.disk) == ({0, 1}, {2, 3, 4}, {5, 6, 7})
    everything = plan_tiers(100, [10] * 8, device_budget=190, host_budget=0, slots=2, reserve=10)
    assert everything.device == set(range(8)) and everything.summary() == "8 layers on the GPU, 0 in pinned RAM, 0 from disk"
    compressed = plan_tiers(100, [10] * 8, device_budget=130, host_budget=10 + 8 * 5, slots=2, reserve=10,
                            streamed_sizes=[5] * 8)  # int8 layers wait in RAM as stored: twice as many fit
    assert compressed.pinned == set(range(8))


@pytest.mark.parametrize("which", ["GPU", "CPU"])
def test_a_budget_below_the_working_set_names_the_smallest_and_it_works(which):
    budgets = {"GPU": dict(device_budget=129_999_999, host_budget=10**9),
               "CPU": dict(device_budget=150_000_000, host_budget=19_999_999)}[which]
    with pytest.raises(FtError, match=f"{which} budget .* is too small") as error:
        plan_tiers(100_000_000, [10_000_000] * 8, slots=2, reserve=10_000_000, **budgets)
    smallest = parse_size(re.search(r"smallest workable \w+ budget is ([\d.]+ ?[KMG]?B)", str(error.value))
                          .group(1).replace(" ", ""))
    key = "device_budget" if which == "GPU" else "host_budget"
    plan_tiers(100_000_000, [10_000_000] * 8, slots=2, reserve=10_000_000, **{**budgets, key: smallest})


@pytest.mark.parametrize("compress", [None, "int8", "nf4"])
def test_the_device_path_gives_the_plain_models_logits_and_tokens(six_layer_dir, tmp_path, compress):
    folder = split(six_layer_dir, tmp_path / "split", compress=compress, progress=False)
    files = json.loads((folder / "manifest.json").read_text())["files"]
    layer, rest = files[0]["dense_bytes"], files[-1]["dense_bytes"]
    reference = LayerwiseModel(folder, budget="1GB", device="cpu")  # every layer resident
    ids = torch.tensor([[4, 8, 15, 16, 23, 42, 7, 9]])
    want = reference.forward(ids)
    tokens = reference.generate(ids, max_new_tokens=6, do_sample=False)
    # 2 layers on the "GPU", 2 pinned, 2 from disk; no KV reserve to speak of
    tiered = LayerwiseModel(folder, device="cpu", _tiered=True, context=1, prefill_chunk=1,
                            gpu_budget=rest + 4 * layer + layer // 2, cpu_budget=4 * files[0]["bytes"])
    assert tiered.tiers.summary() == "2 layers on the GPU, 2 in pinned RAM, 2 from disk"
    torch.testing.assert_close(tiered.forward(ids), want)
    assert tiered.generate(ids, max_new_tokens=6, do_sample=False).tolist() == tokens.tolist()
    assert len(tiered._transfer.slots) == 2  # the same two buffers served every streamed layer, every pass
    tiered.close()


def test_a_long_prompt_is_prefilled_in_chunks_with_the_same_tokens(six_layer_dir, tmp_path):
    folder = split(six_layer_dir, tmp_path / "split", progress=False)
    ids = torch.randint(3, 256, (1, 40), generator=torch.Generator().manual_seed(2))
    want = LayerwiseModel(folder, budget="1GB", device="cpu").generate(ids, max_new_tokens=5, do_sample=False)
    chunked = LayerwiseModel(folder, device="cpu", _tiered=True, prefill_chunk=16, context=64, gpu_budget="1GB",
                             cpu_budget="1GB")
    calls = []
    chunked.model.register_forward_pre_hook(lambda m, a, k: calls.append(k["input_ids"].shape[1]), with_kwargs=True)
    assert chunked.generate(ids, max_new_tokens=5, do_sample=False).tolist() == want.tolist()
    assert calls[:3] == [16, 16, 7]  # 39 prompt tokens in chunks, then generate takes the last one
