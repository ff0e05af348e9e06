"""int8 and nf4 layers: fewer bytes on disk, the same model within their error, budgets that
count the rebuilt weights; and a budget error whose suggestion is itself enough."""

import json
import re

import pytest
import torch
from conftest import tiny_config
from transformers import AutoModelForCausalLM

from ft_core import FtError
from ft_stream import LayerwiseModel, parse_size, split
from ft_stream.compress import ABSMAX, NF4, SCALE, compress, decompress, decompress_into


def test_each_output_row_gets_its_own_scale():
    w = torch.randn(3, 4, 8)  # fused experts: a scale per expert and row
    w[1, 2] *= 100
    packed = compress({"experts.gate_up_proj": w})
    assert packed["experts.gate_up_proj" + SCALE].shape == (3, 4, 1)
    back = decompress(packed, torch.float32)["experts.gate_up_proj"]
    err = (back - w).abs().amax(dim=-1) / w.abs().amax(dim=-1)
    assert float(err.max()) <= 0.5 / 127 + 1e-6  # rounding to the nearest step: half a step at most


def test_nf4_stores_the_nearest_code_per_block_of_64():
    torch.manual_seed(0)
    w = torch.randn(6, 192)
    w[2, 64:128] *= 50  # a block of its own scale
    packed = compress({"mlp.up_proj.weight": w, "odd.weight": torch.randn(3, 100)}, "nf4")
    assert packed["mlp.up_proj.weight"].dtype == torch.uint8 and packed["mlp.up_proj.weight"].shape == (6, 96)
    absmax = packed["mlp.up_proj.weight" + ABSMAX]
    assert absmax.shape == (6, 3) and float(absmax[2, 1]) == float(w[2, 64:128].abs().max())
    assert packed["odd.weight"].dtype == torch.int8  # rows not a multiple of 64 wide: int8
    blocks = w.view(6, 3, 64)
    table = torch.tensor(NF4)
    scaled = blocks / blocks.abs().amax(-1, keepdim=True)
    nearest = table[(scaled.unsqueeze(-1) - table).abs().argmin(-1)] * blocks.abs().amax(-1, keepdim=True)
    back = decompress(packed, torch.float32)
    torch.testing.assert_close(back["mlp.up_proj.weight"], nearest.view(6, 192), rtol=1e-6, atol=1e-6)
    reused = {}
    decompress_into(reused, packed, torch.float32)
    buffer = reused["mlp.up_proj.weight"]
    assert decompress_into(reused, packed, torch.float32)["mlp.up_proj.weight"] is buffer  # no new buffer


def test_nf4_split_is_under_a_third_of_the_bytes_and_close(tiny_dir, tmp_path):
    plain = split(tiny_dir, tmp_path / "bf16", dtype=torch.bfloat16, progress=False)
    small = split(tiny_dir, tmp_path / "nf4", dtype=torch.bfloat16, compress="nf4", progress=False)
    files = [json.loads((f / "manifest.json").read_text()) for f in (plain, small)]
    assert files[1]["compress"] == "nf4"
    for a, b in zip(files[0]["files"], files[1]["files"], strict=True):
        assert b["dense_bytes"] == a["dense_bytes"]
        if a["kind"] == "layer":
            assert 0.25 < b["bytes"] / a["bytes"] < 0.33
    ids = torch.tensor([[4, 8, 15, 16, 23, 42, 7, 9]])
    streamed = LayerwiseModel(small, prefetch=1).forward(ids).float()
    torch.testing.assert_close(LayerwiseModel(small, budget="1GB").forward(ids).float(), streamed)
    # exactly the model whose layer matrices went through nf4 and back
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.bfloat16)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".layers." in name and param.dim() == 2:
                param.copy_(decompress(compress({name: param}, "nf4"), torch.bfloat16)[name])
        want = model(input_ids=ids).logits.float()
    torch.testing.assert_close(streamed, want, rtol=0.02, atol=0.02)
    reference = LayerwiseModel(plain).forward(ids).float()  # 4-bit error: a random tiny model moves ~20%
    assert float((streamed - reference).norm() / reference.norm()) < 0.3


def test_int8_split_halves_the_layer_bytes_and_keeps_the_logits(tiny_dir, tmp_path):
    plain = split(tiny_dir, tmp_path / "bf16", dtype=torch.bfloat16, progress=False)
    small = split(tiny_dir, tmp_path / "int8", dtype=torch.bfloat16, compress="int8", progress=False)
    files = [json.loads((f / "manifest.json").read_text()) for f in (plain, small)]
    assert files[0]["compress"] is None and files[1]["compress"] == "int8"
    for a, b in zip(files[0]["files"], files[1]["files"], strict=True):
        assert b["dense_bytes"] == a["dense_bytes"]
        if a["kind"] == "rest":
            assert b["bytes"] == a["bytes"]  # embeddings and head stay as they are
        else:
            assert 0.5 < b["bytes"] / a["bytes"] < 0.6
    ids = torch.tensor([[4, 8, 15, 16, 23, 42, 7, 9]])
    reference = LayerwiseModel(plain).forward(ids).float()
    streamed = LayerwiseModel(small, prefetch=1).forward(ids).float()
    torch.testing.assert_close(LayerwiseModel(small, budget="1GB").forward(ids).float(), streamed)
    assert float((streamed - reference).norm() / reference.norm()) < 0.03


def test_budgets_count_rebuilt_weights_and_their_mapped_bytes(tmp_path):
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config(num_hidden_layers=8)).save_pretrained(tmp_path / "model")
    small = split(tmp_path / "model", tmp_path / "int8", dtype=torch.bfloat16, compress="int8", progress=False)
    files = json.loads((small / "manifest.json").read_text())["files"]
    rest, layer = files[-1]["dense_bytes"], files[0]["dense_bytes"]
    working = 2 * (layer + files[0]["bytes"])  # computing + read ahead: rebuilt and mapped
    assert LayerwiseModel(small, budget=rest + 8 * layer).resident == set(range(8))
    assert LayerwiseModel(small, budget=rest + working + layer).resident == {0}
    with pytest.raises(FtError, match="too small"):
        LayerwiseModel(small, budget=rest + working - 1)


def test_the_smallest_budget_suggested_is_enough(tiny_dir, tmp_path):
    out = split(tiny_dir, tmp_path / "split", progress=False)
    files = json.loads((out / "manifest.json").read_text())["files"]
    with pytest.raises(FtError) as error:
        LayerwiseModel(out, budget=files[-1]["bytes"] + files[0]["bytes"])
    suggested = re.search(r"smallest workable budget is ([\d.]+ [KMG]?B)", str(error.value)).group(1)
    assert LayerwiseModel(out, budget=suggested.replace(" ", "")).resident == set()
    exact = files[-1]["bytes"] + 2 * files[0]["bytes"]
    assert parse_size(suggested.replace(" ", "")) >= exact


def test_unknown_compression_says_what_exists(tiny_dir, tmp_path):
    with pytest.raises(FtError, match="unknown compression 'int4'.*use int8, nf4"):
        split(tiny_dir, tmp_path / "x", compress="int4", progress=False)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "agreement", "perplexity"), [("int8", 0.9, 1.05), ("nf4", 0.65, 1.25)])
def test_compressed_smollm2_agrees_with_bf16(smol_dir, smol_tokenizer, method, agreement, perplexity):
    """The figures in the README: SmolLM2-135M-Instruct, bf16 layers against compressed layers."""
    from ft_stream.quality import SAMPLE_TEXT, compare

    ids = smol_tokenizer(SAMPLE_TEXT, return_tensors="pt")["input_ids"]
    reference = LayerwiseModel.from_source("smollm2-135m-instruct", dtype=torch.bfloat16)
    small = LayerwiseModel.from_source("smollm2-135m-instruct", dtype=torch.bfloat16, compress=method)
    quality = compare(reference, small, ids)
    print(method, quality.summary())
    assert quality.positions > 250
    assert quality.top1_agreement >= agreement
    assert quality.perplexity <= perplexity * quality.perplexity_reference
