"""LoRA layers leave their input's dtype to autocast (ft_models.lora_autocast)."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ft_models import add_lora
from ft_models.lora_autocast import skip_input_casts_under_autocast


class _FloatCopies(TorchDispatchMode):
    """Counts every op and each cast of a tensor to float32."""

    def __init__(self):
        super().__init__()
        self.ops = self.to_fp32 = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        if func.overloadpacket is torch.ops.aten._to_copy and kwargs.get("dtype") is torch.float32:
            self.to_fp32 += 1
        return func(*args, **kwargs)


def _lora_model(dropout=0.0, use_dora=False, skip=True):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("qwen2", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model = add_lora(model, r=8, alpha=16, dropout=dropout, use_dora=use_dora)
    if not skip:  # PEFT's own cast back: what add_lora gave before
        from peft.tuners.lora.layer import Linear

        for module in model.modules():
            if type(module) is Linear:
                module.__dict__.pop("_cast_input_dtype", None)
    return model


def _step(model, autocast=True):
    ids = torch.arange(64).reshape(2, 32) % 128
    model.zero_grad()
    with _FloatCopies() as seen, torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads, seen


def test_under_autocast_the_adapter_input_is_not_copied_to_fp32_and_nothing_changes():
    ours, peft = _lora_model(), _lora_model(skip=False)
    assert ours.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight.dtype is torch.float32
    loss, grads, seen = _step(ours)
    peft_loss, peft_grads, peft_seen = _step(peft)
    assert torch.equal(loss, peft_loss)
    assert grads.keys() == peft_grads.keys() and all(torch.equal(grads[n], peft_grads[n]) for n in grads)
    # PEFT casts each of the 14 adapters' inputs to fp32 (and autocast casts it straight back)
    assert peft_seen.to_fp32 - seen.to_fp32 == 14
    assert peft_seen.ops - seen.ops >= 2 * 14


def test_the_adapters_keep_less_for_the_backward():
    def kept(model):
        ids = torch.arange(256).reshape(1, 256) % 128
        storages: dict[int, int] = {}

        def keep(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
            model(input_ids=ids, labels=ids)
        return sum(storages.values())

    saved = kept(_lora_model()) - kept(_lora_model(skip=False))
    # per layer and token, PEFT's path kept a bf16 copy of each adapter's input: q, k and v now keep
    # their one shared input (2 copies fewer), gate and up theirs (1 fewer), and o's input is the
    # attention output its backward keeps anyway (1 fewer): 4 hidden-wide bf16 rows in all
    assert saved == -2 * 256 * (2 + 1 + 1) * 64 * 2


def test_outside_autocast_the_fp32_adapter_still_gets_an_fp32_input():
    loss, grads, _ = _step(_lora_model(), autocast=False)
    peft_loss, peft_grads, _ = _step(_lora_model(skip=False), autocast=False)
    assert torch.equal(loss, peft_loss) and all(torch.equal(grads[n], peft_grads[n]) for n in grads)


def test_dropout_runs_on_the_bf16_input_under_autocast():
    model = _lora_model(dropout=0.3)
    model.train()
    loss, grads, seen = _step(model)
    assert torch.isfinite(loss) and seen.to_fp32 < _step(_lora_model(dropout=0.3, skip=False))[2].to_fp32
    assert all(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)


@pytest.mark.parametrize("use_dora", [True])
def test_variants_keep_peft_own_cast(use_dora):
    model = _lora_model(use_dora=use_dora)
    assert skip_input_casts_under_autocast(model) == 0
    assert not any("_cast_input_dtype" in m.__dict__ for m in model.modules())


def test_a_device_autocast_does_not_know_keeps_peft_own_cast():
    layer = _lora_model().base_model.model.model.layers[0].self_attn.q_proj.to("meta")
    # shapes only: torch.is_autocast_enabled("meta") raises
    out = layer(torch.zeros(2, 64, dtype=torch.bfloat16, device="meta"))
    assert out.shape == (2, 64) and out.device.type == "meta"
