"""label_logprobs: the chunked, gradient-in-the-forward head gives log_softmax's values and gradients."""

import pytest
import torch

from ft_train.stages import label_logprobs as module
from ft_train.stages.label_logprobs import label_logprobs


def reference(hidden, weight, targets):
    logits = (hidden @ weight.T).float()
    logp = torch.log_softmax(logits, -1)
    return {"log_probs": logp.gather(1, targets[:, None]).squeeze(1),
            "entropy": -(logp.exp() * logp).sum(-1),
            "is_top1": logits.argmax(-1) == targets,
            "mean_logits": logits.mean(-1),
            "log_sum_sq_probs": torch.logsumexp(2 * logp, -1)}


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_values_and_gradients_equal_log_softmax_across_chunks(dtype, tol, monkeypatch):
    monkeypatch.setattr(module, "CHUNK_BYTES", 4 * 3 * 97)  # 8 rows a chunk: 37 rows make 5 chunks
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 16, generator=g).to(dtype)
    weight = torch.randn(97, 16, generator=g).to(dtype)
    targets = torch.randint(0, 97, (37,), generator=g)
    targets[:3] = (hidden[:3].float() @ weight.float().T).argmax(-1)  # some labels are the top token
    upstream = torch.randn(37, generator=g)  # per-label gradients, as a weighted loss sends them
    want_h = hidden.clone().requires_grad_()
    want = reference(want_h, weight, targets)
    (want_grad,) = torch.autograd.grad((want["log_probs"] * upstream).sum(), want_h)
    got_h = hidden.clone().requires_grad_()
    got = label_logprobs(got_h, weight, targets, tuple(module.METRICS))
    (got_grad,) = torch.autograd.grad((got["log_probs"] * upstream).sum(), got_h)
    assert list(got) == ["log_probs", *module.METRICS]
    for name in ("log_probs", "entropy", "mean_logits", "log_sum_sq_probs"):
        torch.testing.assert_close(got[name], want[name], atol=tol * 10, rtol=tol)
    assert got["is_top1"].tolist() == want["is_top1"].tolist() and got["is_top1"][:3].all()
    torch.testing.assert_close(got_grad.float(), want_grad.float(), atol=tol, rtol=tol * 10)


def test_only_asked_fields_and_no_gradient_work_without_grad():
    hidden, weight = torch.randn(4, 8), torch.randn(11, 8)
    with torch.no_grad():
        got = label_logprobs(hidden, weight, torch.tensor([1, 2, 3, 4]), ("is_top1",))
    assert list(got) == ["log_probs", "is_top1"] and not got["log_probs"].requires_grad


def test_a_head_weight_that_takes_gradients_is_refused():
    with pytest.raises(ValueError, match="plain route"):
        label_logprobs(torch.randn(2, 4), torch.randn(5, 4, requires_grad=True), torch.tensor([0, 1]))


def test_confident_labels_keep_a_precise_gradient():
    """Where p(label) is near 1 the gradient, (p - onehot) @ W, is small: it must be formed before
    bf16 rounding, not as a difference of two rounded near-equal terms."""
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(97, 16, generator=g)
    targets = torch.arange(12)
    hidden = (3 * weight[targets] + 0.1 * torch.randn(12, 16, generator=g)).bfloat16()  # p(label) about 0.999
    weight = weight.bfloat16()
    ref_h = hidden.double().requires_grad_()  # the same bf16 inputs, computed in fp64
    logp = torch.log_softmax(ref_h @ weight.double().T, -1).gather(1, targets[:, None])
    (want,) = torch.autograd.grad(logp.sum(), ref_h)
    assert logp.exp().min() > 0.99
    got_h = hidden.clone().requires_grad_()
    (got,) = torch.autograd.grad(label_logprobs(got_h, weight, targets)["log_probs"].sum(), got_h)
    # the bf16 logits themselves are off by up to 0.125 here, which gives 0.11; subtracting the
    # one-hot after the GEMM instead (W[label] - (e @ W) / Z) measured 1.29
    assert ((got.double() - want).norm() / want.norm()).item() < 0.2
