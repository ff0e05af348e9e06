"""Resident memory follows the budget: each configuration measured in its own process."""

import json
import subprocess
import sys

import torch
from conftest import tiny_config
from transformers import AutoModelForCausalLM

from ft_stream import split

MEASURE = """
import json, sys, torch
from ft_stream import LayerwiseModel
from ft_stream.bench import peak_rss_bytes, reset_peak_rss
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
torch.set_num_threads(1)
before = rss()
model = LayerwiseModel(sys.argv[1], budget=int(sys.argv[2]))
model.forward(torch.tensor([[5, 6, 7, 8]]))  # the first pass: libraries' own first-use memory
settled = rss()
assert reset_peak_rss()
for _ in range(3):
    model.forward(torch.tensor([[5, 6, 7, 8]]))
print(json.dumps({"resident": len(model.resident), "rss": rss() - before, "streaming": peak_rss_bytes() - settled}))
"""


def measure(folder, budget: int) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(folder), str(budget)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_resident_memory_grows_with_the_budget_by_the_layers_it_keeps(tmp_path):
    torch.manual_seed(0)
    # layers of 30.7 MB: at 13.6 MB, two processes' import-time RSS differed by up to a layer, and a
    # CI run measured 4.4 layers kept for 6
    config = tiny_config(num_hidden_layers=8, hidden_size=768, intermediate_size=2304, vocab_size=512,
                         num_attention_heads=8, num_key_value_heads=8)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "model")
    out = split(tmp_path / "model", tmp_path / "split", progress=False)
    files = json.loads((out / "manifest.json").read_text())["files"]
    rest, layer = files[-1]["bytes"], files[0]["bytes"]  # 30.7 MB per fp32 layer
    small, large = measure(out, rest + 2 * layer), measure(out, rest + 8 * layer)
    assert (small["resident"], large["resident"]) == (0, 8)
    kept = large["rss"] - small["rss"]
    assert 0.8 * 6 * layer < kept < 1.25 * 6 * layer, (kept, layer)  # the six more layers it holds, no more
    # passes over streamed layers add at most the working set (the layer computing, the one read ahead)
    assert small["streaming"] < 2.5 * layer, (small, layer)
    assert large["streaming"] < 0.5 * layer, (large, layer)
