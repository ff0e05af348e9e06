"""The streaming path on a real GPU (marked ``gpu``: skipped where CUDA is absent): layers in all
three tiers give the logits and tokens of the same model wholly on the GPU, and streaming
allocates nothing per layer."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from ft_stream import LayerwiseModel, split
from ft_stream.layerwise import resolve_device
from ft_stream.tiers import reserve_bytes

pytestmark = pytest.mark.gpu


def three_tiers(folder, compress=None, **kw) -> LayerwiseModel:
    """2 layers on the GPU, 2 in pinned RAM, 2 read from disk every pass."""
    streamed = split(folder, folder.parent / f"split-{compress}", compress=compress, progress=False)
    files = json.loads((streamed / "manifest.json").read_text())["files"]
    layer, stored, rest = files[0]["dense_bytes"], files[0]["bytes"], files[-1]["dense_bytes"]
    config = AutoConfig.from_pretrained(streamed)
    gpu_budget = rest + 4 * layer + reserve_bytes(config, 64, 16, 4) + layer // 2
    model = LayerwiseModel(streamed, device="cuda", context=64, prefill_chunk=16, gpu_budget=gpu_budget,
                           cpu_budget=4 * stored + stored // 2, **kw)
    assert model.tiers.summary() == "2 layers on the GPU, 2 in pinned RAM, 2 from disk"
    return model


def test_auto_means_the_gpu():
    assert resolve_device("auto").type == "cuda"


def test_three_tiers_give_the_logits_and_tokens_of_the_model_on_the_gpu(six_layer_dir):
    plain = AutoModelForCausalLM.from_pretrained(six_layer_dir).cuda().eval()
    ids = torch.randint(3, 256, (2, 40), generator=torch.Generator().manual_seed(1)).cuda()
    with torch.inference_mode():
        want = plain(input_ids=ids).logits
    streamed = three_tiers(six_layer_dir)
    torch.testing.assert_close(streamed.forward(ids), want, rtol=1e-4, atol=1e-4)
    kw = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=0)
    # 40 prompt tokens: generate prefills them in chunks of 16 first
    assert streamed.generate(ids, **kw).tolist() == plain.generate(ids, **kw).tolist()
    streamed.close()


@pytest.mark.parametrize("compress", ["int8", "nf4"])
def test_compressed_layers_rebuilt_on_the_gpu_match_the_cpu(six_layer_dir, compress):
    ids = torch.randint(3, 256, (1, 24), generator=torch.Generator().manual_seed(2))
    on_gpu = three_tiers(six_layer_dir, compress=compress)
    on_cpu = LayerwiseModel(on_gpu.folder, budget="1GB", device="cpu")
    torch.testing.assert_close(on_gpu.forward(ids).cpu(), on_cpu.forward(ids), rtol=1e-4, atol=1e-4)
    on_gpu.close()


def test_streaming_allocates_nothing_per_layer(six_layer_dir):
    streamed = three_tiers(six_layer_dir)
    ids = torch.randint(3, 256, (1, 16), generator=torch.Generator().manual_seed(3)).cuda()
    streamed.forward(ids)  # the first pass sizes the slots, staging buffers and dequant buffers
    torch.cuda.synchronize()
    reserved, allocated = torch.cuda.memory_reserved(), torch.cuda.memory_allocated()
    for _ in range(3):
        streamed.forward(ids)
    torch.cuda.synchronize()
    assert torch.cuda.memory_reserved() == reserved
    assert torch.cuda.memory_allocated() == allocated
    streamed.close()


def test_time_generation_runs_on_the_gpu(six_layer_dir):
    """The clock criterion answers on the model's device (a CPU tensor broke generate on CUDA)."""
    from ft_stream.bench import time_generation

    plain = AutoModelForCausalLM.from_pretrained(six_layer_dir).cuda().eval()
    ids = torch.randint(3, 256, (1, 8), generator=torch.Generator().manual_seed(4)).cuda()
    result = time_generation(plain, ids, 5)
    assert len(result.tokens) == 5 and result.s_per_token > 0 and result.prefill_s > 0
