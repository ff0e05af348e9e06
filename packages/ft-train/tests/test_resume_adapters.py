"""Resuming a PEFT checkpoint that keeps a second adapter in a subfolder (TRL's DPO saves its
reference adapter in ``ref/``) restores the trained adapter too. transformers before 5.23 loaded
only the subfolders, so a resumed dpo run silently restarted its policy from the initial adapter
(its loss went back to ln 2 on 5.0.0); ``_compat.resume_loads_every_adapter`` loads it there."""

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

from ft_train._compat import resume_loads_every_adapter


def test_a_checkpoint_with_an_adapter_subfolder_resumes_the_trained_adapter(tmp_path, tiny_llama_dir):
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.add_adapter("ref", model.peft_config["default"])  # as TRL 1.16's DPOTrainer does
    model.set_adapter("default")
    checkpoint = tmp_path / "checkpoint-4"
    model.save_pretrained(checkpoint, selected_adapters=["default", "ref"])  # default on top, ref/ below
    assert (checkpoint / "adapter_model.safetensors").is_file() and (checkpoint / "ref").is_dir()
    trained = {k: v.clone() for k, v in model.state_dict().items() if "lora_B.default" in k}
    with torch.no_grad():  # what a fresh process starts from before the resume
        for name, param in model.named_parameters():
            if "lora_B.default" in name:
                param.zero_()
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True,
                                                          report_to="none"))
    resume_loads_every_adapter(trainer)
    trainer._load_from_checkpoint(str(checkpoint))
    state = model.state_dict()
    assert trained and all(torch.equal(state[k], v) for k, v in trained.items())
    assert model.active_adapters == ["default"]
    assert all(p.requires_grad == ("lora_" in n and ".default." in n) for n, p in model.named_parameters())
