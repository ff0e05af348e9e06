"""What skipping PEFT's input cast under autocast (ft-models 0.8.1) saves in a LoRA step, on the CPU.

    python benchmarks/lora_input_casts.py [ROUNDS]

A 24-layer Qwen2 (the GPU benchmark's depth) with tiny widths, LoRA r16 on every linear layer, bf16
weights, fp32 adapters, one forward and backward under bf16 autocast: the ops each path dispatches
(counted, every op a kernel launch on a GPU but views), the loss and gradients compared bit for bit,
and the step's time, alternating the two paths, one thread. With tiny widths the time is the host's
dispatch work, which bounds the GPU step (benchmarks/README.md).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

VIEWS = {"view", "t", "transpose", "_unsafe_view", "expand", "slice", "unsqueeze", "permute", "squeeze",
         "select", "alias", "detach", "as_strided", "_reshape_alias", "lift_fresh"}


class Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.all = self.kernels = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.all += 1
        self.kernels += str(func.overloadpacket).removeprefix("aten.") not in VIEWS
        return func(*args, **(kwargs or {}))


def main(rounds: int) -> None:
    from peft.tuners.lora.layer import Linear
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from ft_models import add_lora
    from ft_models.lora_autocast import skip_input_casts_under_autocast

    torch.manual_seed(0)
    torch.set_num_threads(1)
    config = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=24, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True)
    model = add_lora(Qwen2ForCausalLM(config).to(torch.bfloat16), r=16, alpha=32, dropout=0.0)
    layers = [m for m in model.modules() if type(m) is Linear]
    ids = torch.randint(0, 1000, (8, 128))

    def use(skip: bool) -> None:
        for layer in layers:
            layer.__dict__.pop("_cast_input_dtype", None)
        if skip:
            skip_input_casts_under_autocast(model)

    def step():
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    results = {}
    for skip in (False, True):
        use(skip)
        with Ops() as ops:
            results[skip] = step()
        print(f"{'ft-models' if skip else 'PEFT':9s} {len(layers)} LoRA layers: {ops.all:,} ops, {ops.kernels:,} not views")
    same = torch.equal(results[False][0], results[True][0]) and all(
        torch.equal(a, b) for a, b in zip(results[False][1], results[True][1], strict=True))
    print("loss and gradients bit for bit equal:", same)
    times = {False: [], True: []}
    for r in range(rounds):
        for skip in (False, True) if r % 2 == 0 else (True, False):
            use(skip)
            start = time.perf_counter()
            step()
            times[skip].append(time.perf_counter() - start)
    for skip in (False, True):
        kept = times[skip][2:]  # the first two rounds warm up
        print(f"{'ft-models' if skip else 'PEFT':9s} step median {1000 * statistics.median(kept):.1f} ms "
              f"({1000 * min(kept):.0f}..{1000 * max(kept):.0f}), {len(kept)} rounds")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
