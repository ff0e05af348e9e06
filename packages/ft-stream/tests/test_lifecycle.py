"""A LayerwiseModel always stops its reading thread: at the end of a ``with`` block, on ``close``,
and when it is garbage-collected; ``decoder_layers`` means the ModuleList, as in ft-models."""

import gc
import json
import threading
import time

import torch

from ft_stream import LayerwiseModel, decoder_layers, layer_prefixes, split


def readers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("ft-stream-prefetch")}


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_the_reading_thread_ends_with_the_block_and_with_the_model(tiny_dir, tmp_path):
    folder = split(tiny_dir, tmp_path / "split", progress=False)
    files = json.loads((folder / "manifest.json").read_text())["files"]
    streaming = files[-1]["bytes"] + 2 * files[0]["bytes"]  # the working set only: every layer streams
    ids = torch.tensor([[4, 8, 15, 16]])
    before = readers()  # other tests' models may hold (and end) theirs meanwhile: follow ours by identity
    with LayerwiseModel(folder, budget=streaming, prefetch=1) as model:
        model.forward(ids)
        ours = readers() - before
        assert model.resident == set() and len(ours) == 1
    assert wait_for(lambda: not any(t.is_alive() for t in ours))
    model = LayerwiseModel(folder, budget=streaming, prefetch=1)
    model.forward(ids)
    ours = readers() - before
    assert len(ours) == 1
    del model  # a read ahead still in flight holds the model until it ends: collect until then
    assert wait_for(lambda: gc.collect() is not None and not any(t.is_alive() for t in ours))  # no close()


def test_decoder_layers_is_the_module_list_and_prefixes_name_its_layers(tiny_dir):
    from transformers import AutoModelForCausalLM

    from ft_models import decoder_layers as models_decoder_layers

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    assert decoder_layers(model) is models_decoder_layers(model) is model.model.layers
    assert layer_prefixes(model) == [f"model.layers.{i}." for i in range(4)]
