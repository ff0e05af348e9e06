"""LLaMA-Factory training YAMLs run unchanged, with their dataset_info.json."""

import json
import logging

import pytest
import yaml

from ft_train import run_training
from ft_train.llamafactory import convert
from ft_train.metrics import read_metrics

LF_SFT = """
### model
model_name_or_path: {model}
trust_remote_code: true
### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 4
lora_target: q_proj,v_proj
### dataset
dataset: my_alpaca,my_chat
dataset_dir: {data}
template: qwen
cutoff_len: 64
max_samples: 12
overwrite_cache: true
preprocessing_num_workers: 1
### output
output_dir: {out}
logging_steps: 1
save_steps: 2
plot_loss: true
overwrite_output_dir: true
### train
per_device_train_batch_size: 4
gradient_accumulation_steps: 1
learning_rate: 1.0e-2
num_train_epochs: 1.0
max_steps: 3
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
neat_packing: true
"""


@pytest.fixture
def lf_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "alpaca.json").write_text(json.dumps([{"q": f"Say {i}", "a": f"{i}"} for i in range(20)]))
    (data / "chat.json").write_text(json.dumps([{"conversations": [{"from": "human", "value": f"Hi {i}"},
                                                                   {"from": "gpt", "value": "Hello"}]}
                                                for i in range(20)]))
    (data / "dataset_info.json").write_text(json.dumps({
        "my_alpaca": {"file_name": "alpaca.json", "columns": {"prompt": "q", "response": "a"}},
        "my_chat": {"file_name": "chat.json", "formatting": "sharegpt"}}))
    return tmp_path


def test_a_llamafactory_sft_yaml_is_mapped_key_by_key(lf_dir, tiny_chat_dir):
    lf = yaml.safe_load(LF_SFT.format(model=tiny_chat_dir, data=lf_dir / "data", out=lf_dir / "out"))
    converted = convert(lf, lf_dir / "lf.yaml")
    assert converted.config["model"] == {"source": str(tiny_chat_dir), "trust_remote_code": True}
    assert converted.config["adapter"] == {"type": "lora", "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    data = converted.config["data"]
    assert data["train"] == [{"dataset": "my_alpaca", "max_samples": 12}, {"dataset": "my_chat", "max_samples": 12}]
    assert data["template"] is None and data["packing"] is True and data["cutoff_len"] == 64
    assert data["registry"] == str(lf_dir / "data" / "dataset_info.json")
    train = converted.config["train"]
    assert train["warmup_steps"] == 0.1 and train["lr_scheduler_type"] == "cosine" and train["max_steps"] == 3
    assert [i.split(" ")[0] for i in converted.ignored] == ["do_train", "overwrite_cache", "plot_loss",
                                                             "overwrite_output_dir"]


@pytest.mark.slow
def test_a_llamafactory_sft_yaml_trains_unchanged(lf_dir, tiny_chat_dir, caplog):
    path = lf_dir / "lf.yaml"
    path.write_text(LF_SFT.format(model=tiny_chat_dir, data="data", out=lf_dir / "out"))
    caplog.set_level(logging.INFO, logger="ft_train")
    result = run_training(path)
    assert "a LLaMA-Factory config" in caplog.text
    assert "ignored: do_train (ft always trains); overwrite_cache" in caplog.text
    assert [r["step"] for r in read_metrics(result.metrics_file) if "loss" in r] == [1, 2, 3]
    assert json.loads((result.weights_dir / "adapter_config.json").read_text())["r"] == 4


def test_preference_losses_map_to_stages(lf_dir):
    base = {"model_name_or_path": "m", "stage": "dpo", "dataset": "d", "output_dir": "o", "pref_beta": 0.2}
    assert convert({**base, "pref_loss": "orpo"}, None, check_data=False).config["train"]["stage"] == "orpo"
    simpo = convert({**base, "pref_loss": "simpo", "simpo_gamma": 1.0}, None, check_data=False).config["train"]
    assert simpo == {"stage": "dpo", "output_dir": "o", "loss_type": "simpo", "simpo_gamma": 1.0, "beta": 0.2}
    assert "loss_type" not in convert(base, None, check_data=False).config["train"]
