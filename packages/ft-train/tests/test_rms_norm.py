"""Llama's RMSNorm with a closed-form backward: the module's own output, gradients as precise as
autograd's, and the module's own forward wherever the shortcut does not apply."""

import copy

import pytest
import torch
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from ft_train.stages import rms_norm


def norm_and_input(dtype, seed=0, frozen=True):
    torch.manual_seed(seed)
    norm = LlamaRMSNorm(96, eps=1e-5)
    norm.weight.data.normal_(1.0, 0.2)
    norm = norm.to(dtype).requires_grad_(not frozen)
    return norm, (torch.randn(3, 17, 96) * 3 + 0.5).to(dtype)


def out_and_grad(norm, x, grad_out):
    x = x.detach().clone().requires_grad_()
    out = norm(x)
    out.backward(grad_out.to(out.dtype))
    return out.detach(), x.grad


def relative(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_output_is_the_modules_own_and_the_gradient_as_precise_as_autograds(dtype):
    norm, x = norm_and_input(dtype)
    grad_out = torch.randn(x.shape).to(dtype)
    plain_out, plain_grad = out_and_grad(norm, x, grad_out)
    reference = copy.deepcopy(norm).double()
    ref_out, ref_grad = out_and_grad(reference, x.double(), grad_out.double())
    assert rms_norm.install(torch.nn.Sequential(norm)) == 1
    ours_out, ours_grad = out_and_grad(norm, x, grad_out)
    assert torch.equal(ours_out, plain_out)
    ours, autograd = relative(ours_grad, ref_grad), relative(plain_grad, ref_grad)
    if dtype == torch.float32:
        assert ours < 1e-6, ours
    else:  # bf16: both round the same fp32 result once
        assert ours <= 1.1 * autograd + 1e-4 and ours < 1e-2, (ours, autograd)


def test_a_trainable_weight_runs_the_modules_own_forward():
    norm, x = norm_and_input(torch.bfloat16, frozen=False)
    rms_norm.install(torch.nn.Sequential(norm))
    out_and_grad(norm, x, torch.ones(x.shape))
    assert norm.weight.grad is not None and norm.weight.grad.abs().sum() > 0


def test_only_llamas_norm_code_is_taken():
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

    assert rms_norm.runs_llama_rms_norm(Qwen2RMSNorm(8))
    assert not rms_norm.runs_llama_rms_norm(GemmaRMSNorm(8))  # 1 + weight, in fp32
    assert not rms_norm.runs_llama_rms_norm(torch.nn.RMSNorm(8))


def test_a_lora_llama_trains_as_before():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model("llama", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2)
    model = get_peft_model(AutoModelForCausalLM.from_config(config).float(),
                           LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(1))

    def loss_and_grads():
        model.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    want_loss, want_grads = loss_and_grads()
    assert rms_norm.install(model) == 5  # two per layer and the final norm
    loss, grads = loss_and_grads()
    assert torch.equal(loss, want_loss)
    for got, want in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
