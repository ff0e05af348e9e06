"""The fused CPU kernels (numba): the module's own output up to one bf16 step, gradients as precise
as autograd's, the module's own forward wherever a kernel does not apply, and a clear error where
the YAML asks for kernels numba cannot give."""

import copy

import pytest
import torch
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from ft_train import kernels

pytest.importorskip("numba", reason="the cpu-kernels extra (numba) is part of the dev install")
from ft_train.kernels import rms_norm  # noqa: E402


def norm_and_input(seed=0, frozen=True, width=96):
    torch.manual_seed(seed)
    norm = LlamaRMSNorm(width, eps=1e-5)
    norm.weight.data.normal_(1.0, 0.3)
    norm = norm.to(torch.bfloat16).requires_grad_(not frozen)
    return norm, (torch.randn(3, 17, width) * 3 + 0.5).to(torch.bfloat16)


def out_and_grad(norm, x, grad_out):
    x = x.detach().clone().requires_grad_()
    out = norm(x)
    out.backward(grad_out.to(out.dtype))
    return out.detach(), x.grad


def relative(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


def one_bf16_step(a, b):
    """Whether every element of ``a`` is ``b`` or its bf16 neighbour."""
    step = torch.finfo(torch.bfloat16).eps * b.float().abs().clamp_min(torch.finfo(torch.bfloat16).tiny)
    return bool(((a.float() - b.float()).abs() <= step).all())


@pytest.mark.parametrize("width", [96, 576])
def test_rms_norm_is_the_modules_own_and_its_gradient_as_precise_as_autograds(width):
    norm, x = norm_and_input(width=width)
    grad_out = torch.randn(x.shape).to(torch.bfloat16)
    plain_out, plain_grad = out_and_grad(norm, x, grad_out)
    reference = copy.deepcopy(norm).double()
    ref_out, ref_grad = out_and_grad(reference, x.double(), grad_out.double())
    assert rms_norm.install(torch.nn.Sequential(norm)) == 1
    ours_out, ours_grad = out_and_grad(norm, x, grad_out)
    assert one_bf16_step(ours_out, plain_out)
    assert (ours_out == plain_out).float().mean() > 0.99  # only the sum's order differs
    assert relative(ours_out, ref_out) <= 1.05 * relative(plain_out, ref_out)
    ours, autograd = relative(ours_grad, ref_grad), relative(plain_grad, ref_grad)
    assert ours <= 1.05 * autograd and ours < 1e-2, (ours, autograd)


def test_rms_norm_rows_of_any_layout_and_without_grad():
    norm, x = norm_and_input()
    want = norm(x)
    rms_norm.install(torch.nn.Sequential(norm))
    strided = x.transpose(0, 1).contiguous().transpose(0, 1)  # same values, another layout
    with torch.no_grad():
        assert one_bf16_step(norm(strided), want)
    x[0, 0] = float("nan")
    assert norm(x)[0, 0].isnan().all() and not norm(x)[1:].isnan().any()


def test_what_a_kernel_does_not_reproduce_runs_the_modules_own_forward():
    trainable, x = norm_and_input(frozen=False)
    rms_norm.install(torch.nn.Sequential(trainable))
    out_and_grad(trainable, x, torch.ones(x.shape))
    assert trainable.weight.grad is not None and trainable.weight.grad.abs().sum() > 0
    fp32 = LlamaRMSNorm(8).requires_grad_(False)
    x32 = torch.randn(2, 8)
    want = fp32(x32)
    rms_norm.install(torch.nn.Sequential(fp32))
    assert torch.equal(fp32(x32), want)  # fp32 activations: the module's own code, bit for bit


def test_only_llamas_norm_code_is_taken():
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

    assert rms_norm.runs_llama_rms_norm(Qwen2RMSNorm(8))
    assert not rms_norm.runs_llama_rms_norm(GemmaRMSNorm(8))  # 1 + weight, in fp32
    assert not rms_norm.runs_llama_rms_norm(torch.nn.RMSNorm(8))


def test_a_bf16_lora_llama_trains_as_before():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model("llama", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2)
    model = get_peft_model(AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16),
                           LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(1))

    def loss_and_grads():
        model.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        return loss.detach().float(), [p.grad.float().clone() for p in model.parameters() if p.requires_grad]

    want_loss, want_grads = loss_and_grads()
    assert kernels.install(model) == {"rms_norm": 5, "label_softmax": 1}  # two norms a layer and the final one
    loss, grads = loss_and_grads()
    assert abs(loss - want_loss) < 1e-2
    for got, want in zip(grads, want_grads, strict=True):
        assert relative(got, want.double()) < 0.05


def test_without_numba_nothing_is_installed_and_asking_for_kernels_says_what_to_install(monkeypatch):
    from ft_core import FtError
    from ft_train import model_setup

    norm, _ = norm_and_input()
    monkeypatch.setattr(kernels, "available", lambda: False)
    assert kernels.install(torch.nn.Sequential(norm)) == {}
    model_setup._install_cpu_kernels(torch.nn.Sequential(norm), required=False)
    assert not hasattr(norm, "_ft_own_forward")
    with pytest.raises(FtError, match=r"pip install 'ft-train\[cpu-kernels\]'"):
        model_setup._install_cpu_kernels(torch.nn.Sequential(norm), required=True)


@pytest.mark.parametrize("vocab", [97, 1537])  # one block, and several blocks with a short last one
def test_label_softmax_gives_the_fields_and_gradient_factor_of_torchs_softmax(vocab):
    from ft_train.kernels import label_softmax

    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(40, vocab, generator=g) * 4).to(torch.bfloat16)
    targets = torch.randint(0, vocab, (40,), generator=g)
    targets[:3] = logits[:3].float().argmax(-1)  # some labels are the top token
    targets[3:6] = torch.tensor([0, vocab - 1, min(512, vocab - 1)])  # the first, last and a block's first
    x = logits.float()
    logp = torch.log_softmax(x, -1)
    probs = logp.exp()
    want = {"log_probs": logp.gather(1, targets[:, None]).squeeze(1), "entropy": -(probs * logp).sum(-1),
            "mean_logits": x.mean(-1), "log_sum_sq_probs": (probs * probs).sum(-1).log()}
    factor = probs.clone()
    factor[torch.arange(40), targets] -= 1
    got = label_softmax.softmax_rows(logits, targets)
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, atol=5e-5, rtol=1e-5)
    assert got["is_top1"].tolist() == (x.argmax(-1) == targets).tolist() and got["is_top1"][:3].all()
    rounded = factor.to(torch.bfloat16)  # the logits now hold softmax - onehot, rounded to bf16
    assert one_bf16_step(logits, rounded) and (logits == rounded).float().mean() > 0.99
    with pytest.raises(ValueError, match="outside the vocabulary"):
        label_softmax.softmax_rows(logits, torch.full((40,), vocab))


def test_the_fused_head_gives_label_logprobs_own_values_and_gradients(monkeypatch):
    from ft_train.stages import label_logprobs as module

    monkeypatch.setattr(module, "CHUNK_BYTES", 2 * 8 * 1537)  # 8 rows a chunk: 37 rows make 5 chunks
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(37, 64, generator=g).to(torch.bfloat16)
    weight = (torch.randn(1537, 64, generator=g) / 4).to(torch.bfloat16)
    targets = torch.randint(0, 1537, (37,), generator=g)
    upstream = torch.randn(37, generator=g)

    def run(fused):
        h = hidden.clone().requires_grad_()
        fields = module.label_logprobs(h, weight, targets, tuple(module.METRICS), fused=fused)
        (grad,) = torch.autograd.grad((fields["log_probs"] * upstream).sum(), h)
        return fields, grad

    (plain, plain_grad), (fused, fused_grad) = run(False), run(True)
    for name in ("log_probs", "entropy", "mean_logits", "log_sum_sq_probs"):
        torch.testing.assert_close(fused[name], plain[name], atol=5e-5, rtol=1e-5)
    assert fused["is_top1"].tolist() == plain["is_top1"].tolist()
    assert relative(fused_grad.float(), plain_grad.double()) < 5e-3  # bf16 roundings of the same factor


def test_the_fused_head_takes_chunks_of_bf16_logits_twice_as_many_rows_as_fp32(monkeypatch):
    """A chunk buffer holds the same bytes on either route: bf16 logits in the fused one (341 rows
    of SmolLM2's 49,152 were 10% faster than 170, measured), fp32 in the plain one."""
    from ft_train.stages import label_logprobs as module

    assert module._chunk_rows(49152, 2) == 341 and module._chunk_rows(49152, 4) == 170
    monkeypatch.setattr(module, "CHUNK_BYTES", 4 * 8 * 1537)  # 8 fp32 rows, 16 bf16 rows a chunk
    sizes = {True: [], False: []}
    for fused, name in ((True, "_chunk_fields_fused"), (False, "_chunk_fields")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, fused=fused: sizes[fused].append(a[-1]) or real(*a))
    hidden = torch.randn(37, 64).to(torch.bfloat16)
    weight = torch.randn(1537, 64).to(torch.bfloat16)
    for fused in (True, False):
        module.label_logprobs(hidden, weight, torch.zeros(37, dtype=torch.long), fused=fused)
    assert [s.start for s in sizes[True]] == [0, 16, 32]
    assert [s.start for s in sizes[False]] == [0, 8, 16, 24, 32]


def test_kernels_that_fail_to_build_leave_the_model_alone_or_stop_a_run_that_asked_for_them(monkeypatch, caplog):
    from ft_core import FtError
    from ft_train import model_setup

    def broken():
        raise RuntimeError("no LLVM target for this CPU")

    norm, _ = norm_and_input()
    monkeypatch.setattr(kernels, "warm_up", broken)
    model_setup._install_cpu_kernels(torch.nn.Sequential(norm), required=False)
    assert not hasattr(norm, "_ft_own_forward") and "no LLVM target for this CPU" in caplog.text
    with pytest.raises(FtError, match="numba could not build ft's kernels here: no LLVM target"):
        model_setup._install_cpu_kernels(torch.nn.Sequential(norm), required=True)


def test_the_kernels_documented_examples_run():
    import doctest

    from ft_train.kernels import label_softmax

    for module in (kernels, rms_norm, label_softmax):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
