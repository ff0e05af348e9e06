import pytest
import torch

from ft_core import FtError
from ft_models import (
    ChatModel,
    add_lora,
    attention_report,
    load_adapter,
    load_model,
    load_tokenizer,
    resolve_dtype,
    trainable_parameters,
)


def test_dtype_names():
    assert resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype("auto") is (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    with pytest.raises(FtError, match="did you mean 'float16'"):
        resolve_dtype("floa16")


def test_attention_report_explains_each_option():
    report = {o.name: o for o in attention_report()}
    assert list(report) == ["flash_attention_2", "sdpa", "eager"]
    assert report["eager"].available and report["sdpa"].available
    if not torch.cuda.is_available():
        assert not report["flash_attention_2"].available and report["flash_attention_2"].reason


def test_lora_trains_only_adapter_weights_and_round_trips(tiny_llama_dir, tmp_path):
    model = load_model(str(tiny_llama_dir), dtype="float32")
    _, total = trainable_parameters(model)
    peft_model = add_lora(model, r=4, alpha=8, dropout=0.0)
    trainable, total_with_lora = trainable_parameters(peft_model)
    assert 0 < trainable < total_with_lora * 0.2
    assert all("lora_" in n for n, p in peft_model.named_parameters() if p.requires_grad)
    # a step moves the adapter, and the saved adapter reproduces the trained logits
    ids = torch.randint(0, 256, (2, 12))
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    peft_model.save_pretrained(tmp_path / "adapter")
    reloaded = load_adapter(load_model(str(tiny_llama_dir), dtype="float32"), str(tmp_path / "adapter"))
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, peft_model(input_ids=ids).logits)


def test_start_from_continues_a_saved_adapter_with_its_own_settings(tiny_llama_dir, tmp_path):
    from ft_models import AdapterSpec, apply_adapter

    first = add_lora(load_model(str(tiny_llama_dir), dtype="float32"), r=4, alpha=8, dropout=0.0,
                     target_modules=["q_proj", "v_proj"])
    with torch.no_grad():
        for name, p in first.named_parameters():
            if "lora_B" in name:
                p.normal_()  # a trained-looking adapter: B is zero when new
    first.save_pretrained(tmp_path / "adapter")
    ids = torch.randint(0, 256, (2, 12))
    # the spec's own r and targets give way to the saved adapter's
    continued = apply_adapter(load_model(str(tiny_llama_dir), dtype="float32"),
                              AdapterSpec(r=16, start_from=str(tmp_path / "adapter")))
    assert continued.peft_config["default"].r == 4
    assert sorted(continued.peft_config["default"].target_modules) == ["q_proj", "v_proj"]
    trained = {n for n, p in continued.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    with torch.no_grad():
        torch.testing.assert_close(continued(input_ids=ids).logits, first(input_ids=ids).logits)


@pytest.mark.parametrize("spec, message", [
    (dict(type="full"), "start_from continues a LoRA adapter"),
    (dict(init="pissa"), "init 'pissa' would start new ones"),
    (dict(head="score"), "a reward model \\(head score\\) starts a new one"),
])
def test_start_from_refuses_what_it_cannot_continue(spec, message):
    from ft_models import AdapterSpec

    with pytest.raises(FtError, match=message):
        AdapterSpec(start_from="saves/sft/adapter", **spec)


def test_load_adapter_names_a_bad_folder(tiny_llama_dir, tmp_path):
    with pytest.raises(FtError, match="has no adapter_config.json, nor an adapter/ folder with one"):
        load_adapter(load_model(str(tiny_llama_dir)), str(tmp_path))


def test_a_runs_output_folder_stands_for_its_adapter(tiny_llama_dir, tmp_path):
    """LLaMA-Factory saves the adapter in output_dir itself, and its YAMLs name that folder
    (adapter_name_or_path); an ft run saves it in output_dir/adapter."""
    from ft_models.adapter_check import check_adapter_for
    from ft_models.adapters import require_adapter

    add_lora(load_model(str(tiny_llama_dir)), r=4, alpha=8).save_pretrained(tmp_path / "run" / "adapter")
    assert require_adapter(tmp_path / "run") == tmp_path / "run" / "adapter"
    assert require_adapter(tmp_path / "run" / "adapter") == tmp_path / "run" / "adapter"
    check_adapter_for(str(tiny_llama_dir), tmp_path / "run")
    model = load_adapter(load_model(str(tiny_llama_dir)), str(tmp_path / "run"))
    assert model.peft_config["default"].r == 4


@pytest.mark.slow
def test_embedded_model_answers_with_its_chat_template(smol_dir):
    tok = load_tokenizer("smollm2-135m-instruct")
    assert "<|im_start|>" in tok.chat_template
    assert tok.eos_token == tok.pad_token == "<|im_end|>" and tok.bos_token == "<|im_start|>"  # as the GGUF file says
    chat = ChatModel.load("smollm2-135m-instruct")
    assert chat.model.config.num_hidden_layers == 30 and chat.model.config.tie_word_embeddings
    assert chat.reply([{"role": "user", "content": "What is the capital of France?"}]) == "The capital of France is Paris."


def test_gguf_special_tokens_come_from_the_file(smol_dir):
    """transformers before 5.18 read SmolLM2's GGUF eos as <|im_start|> and no pad token."""
    from transformers import AutoTokenizer

    from ft_models._compat import gguf_special_tokens
    from ft_models.embedded import EMBEDDED_MODELS

    tok = AutoTokenizer.from_pretrained(smol_dir)
    tok.eos_token, tok.pad_token = "<|im_start|>", None  # what transformers 5.0 gave
    assert gguf_special_tokens(tok, EMBEDDED_MODELS["smollm2-135m-instruct"].gguf_path()) == \
        {"eos": "<|im_end|>", "pad": "<|im_end|>"}
    assert tok.eos_token_id == tok.pad_token_id == 2


def test_an_adapter_for_another_base_is_refused_or_warned_about(tiny_llama_dir, tmp_path, caplog):
    import shutil

    from conftest import tiny_config
    from transformers import AutoModelForCausalLM

    add_lora(load_model(str(tiny_llama_dir), dtype="float32"), r=4, alpha=8).save_pretrained(tmp_path / "adapter")
    wider = tmp_path / "wider"
    AutoModelForCausalLM.from_config(tiny_config(hidden_size=96, tie_word_embeddings=False)).save_pretrained(wider)
    with pytest.raises(FtError, match=r"adapter .*adapter does not fit .*wider: model.layers.0.mlp.down_proj is "
                                      r"128->96 there and 128->64 in the adapter \(it was trained on .*tiny-llama"):
        load_adapter(load_model(str(wider), dtype="float32"), str(tmp_path / "adapter"))
    twin = tmp_path / "twin"  # the same shapes under another name: loads, with a warning
    shutil.copytree(tiny_llama_dir, twin)
    load_adapter(load_model(str(twin), dtype="float32"), str(tmp_path / "adapter"))
    assert f"was trained on {tiny_llama_dir}, not {twin}" in caplog.text
    caplog.clear()
    load_adapter(load_model(str(tiny_llama_dir), dtype="float32"), str(tmp_path / "adapter"))
    assert "trained on" not in caplog.text


def test_parameters_partitioned_by_zero3_count_whole():
    """ZeRO-3 leaves each process an empty placeholder with the real size in ``ds_numel``."""
    import torch

    model = torch.nn.Linear(4, 3)
    model.weight.requires_grad_(False)
    placeholder = torch.nn.Parameter(torch.empty(0), requires_grad=False)
    placeholder.ds_numel = 12
    model.weight = placeholder
    assert trainable_parameters(model) == (3, 15)
