"""The LoRA branch in the base's dtype: PEFT's outputs and gradients within bf16 rounding, and
PEFT's own forward wherever the shortcut does not apply."""

import copy

import pytest
import torch

from ft_train.stages import lora_compute


def lora_model(dtype, dropout=0.0, seed=0, device="cpu"):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model("llama", vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2)
    base = AutoModelForCausalLM.from_config(config, dtype=dtype).to(device)
    return get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules="all-linear",
                                           init_lora_weights=False))


IDS = torch.randint(3, 256, (2, 24), generator=torch.Generator().manual_seed(3))


def loss_and_grads(model):
    model.zero_grad()
    ids = IDS.to(model.device)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_bf16_base_fp32_adapter_matches_peft_and_the_fp32_reference(device):
    model = lora_model(torch.bfloat16, device=device)
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}  # PEFT's upcast
    # the same weights computed in fp32 (a second model built at fp32 is not the same model on every
    # transformers: 5.17 initialises a bf16 model differently)
    reference = copy.deepcopy(model).float()
    peft_loss, peft_grads = loss_and_grads(model)
    assert lora_compute.install(model) == 14  # 7 linear layers x 2 decoder layers
    ours_loss, ours_grads = loss_and_grads(model)
    ref_loss, ref_grads = loss_and_grads(reference)

    def error(grads):
        return torch.stack([(g - r).norm() / r.norm() for g, r in zip(grads, ref_grads, strict=True)]).median()

    torch.testing.assert_close(ours_loss, peft_loss, atol=2e-2, rtol=2e-2)
    ours, peft = error(ours_grads).item(), error(peft_grads).item()
    assert ours <= 1.5 * peft + 1e-3, f"ours {ours:.4g}, PEFT {peft:.4g}"  # no less accurate than PEFT's fp32 branch
    assert ours < 0.05


@pytest.mark.parametrize("case", ["fp32 base", "dropout", "adapter disabled"])
def test_anything_else_runs_peft_exactly(case):
    model = lora_model(torch.float32 if case == "fp32 base" else torch.bfloat16, dropout=0.1 if case == "dropout" else 0.0)
    model.eval()  # dropout off for the comparison; the module still holds a Dropout, so ours steps aside

    def logits():
        with torch.no_grad():
            if case == "adapter disabled":
                with model.disable_adapter():
                    return model(input_ids=IDS).logits
            return model(input_ids=IDS).logits

    want = logits()
    lora_compute.install(model)
    assert torch.equal(logits(), want)
