"""Split folders: manifest, reuse, redo when stale, checksums, truncation, budgets."""

import json
import os

import pytest
import torch
from conftest import tiny_config
from transformers import AutoModelForCausalLM

from ft_core import FtError
from ft_stream import LayerwiseModel, parse_size, split
from ft_stream.layerfile import sha256_file


def test_split_writes_one_file_per_layer_and_a_manifest(tiny_dir, tmp_path):
    out = split(tiny_dir, tmp_path / "split", progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    names = [f["name"] for f in manifest["files"]]
    assert names == ["layer_0000.safetensors", "layer_0001.safetensors", "layer_0002.safetensors",
                     "layer_0003.safetensors", "rest.safetensors"]
    for f in manifest["files"]:
        assert (out / f["name"]).stat().st_size == f["bytes"] and sha256_file(out / f["name"]) == f["sha256"]
    assert manifest["architecture"] == "LlamaForCausalLM" and manifest["num_layers"] == 4
    assert manifest["dtype"] == "torch.float32" and manifest["transformers"].startswith("5.")
    assert manifest["layer_prefixes"][2] == "model.layers.2."
    assert {"config.json", "generation_config.json"} <= set(os.listdir(out))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".split")]  # no temporary folder left


def test_an_up_to_date_split_is_reused_and_a_stale_one_redone(tiny_dir, tmp_path):
    out = split(tiny_dir, tmp_path / "split", progress=False)
    stamp = (out / "layer_0000.safetensors").stat().st_mtime_ns
    assert split(tiny_dir, out, progress=False) == out
    assert (out / "layer_0000.safetensors").stat().st_mtime_ns == stamp
    old = json.loads((out / "manifest.json").read_text())["source_fingerprint"]
    torch.manual_seed(1)  # the source changes: the split is redone
    AutoModelForCausalLM.from_config(tiny_config(num_hidden_layers=4, tie_word_embeddings=False)).save_pretrained(tiny_dir)
    split(tiny_dir, out, progress=False)
    assert json.loads((out / "manifest.json").read_text())["source_fingerprint"] != old
    (out / "layer_0001.safetensors").unlink()  # a damaged split is redone too
    split(tiny_dir, out, progress=False)
    assert (out / "layer_0001.safetensors").is_file()


def test_bf16_conversion_at_split_time(tiny_dir, tmp_path):
    out = split(tiny_dir, tmp_path / "bf16", dtype=torch.bfloat16, progress=False)
    full = split(tiny_dir, tmp_path / "fp32", progress=False)
    assert json.loads((out / "manifest.json").read_text())["dtype"] == "torch.bfloat16"
    assert (out / "layer_0000.safetensors").stat().st_size < 0.6 * (full / "layer_0000.safetensors").stat().st_size


def test_a_corrupted_layer_is_caught_by_its_checksum(tiny_dir, tmp_path):
    out = split(tiny_dir, tmp_path / "split", progress=False)
    path = out / "layer_0002.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # same size, one weight changed
    path.write_bytes(bytes(data))
    model = LayerwiseModel(out)
    with pytest.raises(FtError, match=r"layer_0002.safetensors does not match its checksum .*split again"):
        model.forward(torch.tensor([[1, 2, 3]]))


def test_a_truncated_layer_is_named_before_anything_runs(tiny_dir, tmp_path):
    out = split(tiny_dir, tmp_path / "split", progress=False)
    path = out / "layer_0001.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(FtError, match=r"layer_0001.safetensors missing or truncated; delete .* and split again"):
        LayerwiseModel(out)


def test_budgets(tiny_dir, tmp_path):
    out = split(tiny_dir, tmp_path / "split", progress=False)
    files = json.loads((out / "manifest.json").read_text())["files"]
    rest, layer = files[-1]["bytes"], files[0]["bytes"]
    with pytest.raises(FtError, match=r"too small: the smallest workable budget is .* \(embeddings and head .* \+ 2 "
                                      r"streamed layers"):
        LayerwiseModel(out, budget=rest + layer)
    assert LayerwiseModel(out, budget=rest + 2 * layer).resident == set()
    assert LayerwiseModel(out, budget=rest + 3 * layer).resident == {0}  # 2 streaming slots + 1 resident
    assert LayerwiseModel(out, budget=rest + 4 * layer).resident == {0, 1, 2, 3}  # all fit: nothing streams
    everything = LayerwiseModel(out, budget="1GB")
    assert everything.resident == {0, 1, 2, 3}
    ids = torch.tensor([[4, 8, 15, 16, 23, 42]])
    streamed = LayerwiseModel(out, prefetch=0).forward(ids)
    torch.testing.assert_close(everything.forward(ids), streamed)
    prefetching = LayerwiseModel(out)
    torch.testing.assert_close(prefetching.forward(ids), streamed)
    assert set(prefetching._pending) == {0}  # the next pass's first layer is already being read


def test_sizes():
    assert parse_size("2GB") == 2_000_000_000 and parse_size("1.5 GiB") == int(1.5 * 2**30) and parse_size(512) == 512
    with pytest.raises(FtError, match="write it like 2GB"):
        parse_size("two gigs")


def test_a_folder_that_is_not_a_split_says_how_to_make_one(tmp_path):
    with pytest.raises(FtError, match="not a split model folder .*ft stream split"):
        LayerwiseModel(tmp_path)


def test_a_sharded_checkpoint_splits_and_streams_like_the_plain_model(tmp_path):
    torch.manual_seed(0)
    plain = AutoModelForCausalLM.from_config(tiny_config(num_hidden_layers=3)).eval()
    plain.save_pretrained(tmp_path / "sharded", max_shard_size="200KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    with torch.no_grad():
        expected = plain(ids).logits
    streamed = LayerwiseModel(split(tmp_path / "sharded", tmp_path / "split", progress=False))
    torch.testing.assert_close(streamed.forward(ids), expected, atol=1e-5, rtol=1e-5)


def test_a_model_without_decoder_layers_is_refused():
    from ft_stream import decoder_layers

    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = tiny_config(num_hidden_layers=3)
            self.proj = torch.nn.Linear(4, 4)

    with pytest.raises(FtError, match="Flat has no list of 3 decoder layers; ft-stream cannot stream it"):
        decoder_layers(Flat())


def test_split_never_replaces_a_foreign_folder_or_the_source(tiny_dir, tmp_path):
    foreign = tmp_path / "mine"
    (foreign / "sub").mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep me")
    (foreign / "sub" / "notes.md").write_text("and me")
    with pytest.raises(FtError, match="not made by ft"):
        split(tiny_dir, foreign, progress=False)
    assert sorted(p.name for p in foreign.rglob("*")) == ["notes.md", "precious.txt", "sub"]
    for holder in (tiny_dir, tmp_path):
        with pytest.raises(FtError, match="holds the input"):
            split(tiny_dir, holder, progress=False, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "model"]
    assert (split(tiny_dir, foreign, progress=False, force=True) / "manifest.json").is_file()


def test_a_damaged_manifest_is_named(tiny_dir, tmp_path):
    out = split(tiny_dir, tmp_path / "split", progress=False)
    (out / "manifest.json").write_text('{"format": 1, "files": [')
    with pytest.raises(FtError, match=r"manifest.json is damaged .*delete .* split again"):
        LayerwiseModel(out)
    (out / "manifest.json").write_text("[]")
    with pytest.raises(FtError, match="manifest.json is damaged"):
        LayerwiseModel(out)
    assert split(tiny_dir, out, progress=False) == out  # ft's own folder: redone
    LayerwiseModel(out).close()


def test_an_interrupted_split_leaves_nothing_behind_after_the_next_run(tiny_dir, tmp_path):
    import subprocess
    import sys

    code = ("import os, signal, sys\n"
            "import safetensors.torch as st\n"
            "from ft_stream import split\n"
            "save = st.save_file\n"
            "def killed(tensors, path, *a, **k):\n"
            "    save(tensors, path, *a, **k)\n"
            "    if 'layer_0002' in str(path): os.kill(os.getpid(), signal.SIGKILL)\n"
            "st.save_file = killed\n"
            "split(sys.argv[1], sys.argv[2], progress=False)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tiny_dir), str(tmp_path / "split")], capture_output=True)
    assert done.returncode == -9
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".split.tmp-")]
    assert len(left) == 1 and not (tmp_path / "split").exists()  # killed: its temp folder stays ...
    split(tiny_dir, tmp_path / "split", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "split"]  # ... until the next run
