"""LLaMA-Factory training YAMLs run unchanged, with their dataset_info.json."""

import json
import logging
import math
from pathlib import Path

import pytest
import yaml

from ft_core import FtError
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
    assert converted.config["model"] == {"source": str(tiny_chat_dir), "dtype": "bfloat16", "trust_remote_code": True}
    assert converted.config["adapter"] == {"type": "lora", "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    data = converted.config["data"]
    assert data["train"] == [{"dataset": "my_alpaca", "max_samples": 12}, {"dataset": "my_chat", "max_samples": 12}]
    assert data["template"] is None and data["packing"] is True and data["cutoff_len"] == 64
    assert data["registry"] == str(lf_dir / "data" / "dataset_info.json")
    train = converted.config["train"]
    assert train["warmup_steps"] == 0.1 and train["lr_scheduler_type"] == "cosine" and train["max_steps"] == 3
    assert [i.split(" ")[0] for i in converted.ignored] == ["do_train", "overwrite_cache", "plot_loss",
                                                             "overwrite_output_dir"]


def test_the_conversion_is_announced_once_by_the_run_not_by_the_cli_check(lf_dir, tiny_chat_dir, caplog):
    from ft_train import load_run_config

    path = lf_dir / "lf.yaml"
    path.write_text(LF_SFT.format(model=tiny_chat_dir, data="data", out=lf_dir / "out"))
    caplog.set_level(logging.INFO, logger="ft_train")
    quiet = load_run_config(path, announce=False)
    assert "LLaMA-Factory" not in caplog.text and "ignored" not in caplog.text
    assert load_run_config(path) == quiet
    assert caplog.text.count("a LLaMA-Factory config") == 1 and caplog.text.count("ignored: do_train") == 1


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


LF_KEYS = json.loads((Path(__file__).parent / "llamafactory_0.9.5_keys.json").read_text())["keys"]
BASE = {"model_name_or_path": "m", "dataset": "d", "output_dir": "o"}


def test_every_llamafactory_key_is_mapped_passed_on_or_left_out_with_its_reason():
    """Each of LLaMA-Factory 0.9.5's own keys, set at once (strings where a path or name is read)."""
    values = {"dataset_dir": "data", "eval_dataset": "e", "default_system": "s", "template": "qwen",
              "freeze_trainable_modules": "mlp", "lora_target": "all", "flash_attn": "auto", "pref_loss": "sigmoid",
              "finetuning_type": "lora", "stage": "sft", "reward_model_type": "lora", "rope_scaling": None,
              "adapter_name_or_path": "saves/sft", "create_new_adapter": False, "pissa_init": False}
    lf = {**{k: 1 for k in LF_KEYS}, **BASE, **values}
    converted = convert(lf, None, check_data=False)
    assert not [line for line in converted.ignored if "not a LLaMA-Factory" in line]
    named = {line.split(" ")[0] for line in converted.ignored}
    # what an sft run left out, each for a reason of its own
    assert {"use_galore", "image_max_pixels", "export_dir", "ppo_target", "num_beams", "top_p", "max_new_tokens",
            "freeze_trainable_modules", "reward_model"} <= named
    assert "use_galore (an optimizer ft does not carry over: choose one with optim)" in converted.ignored
    assert "max_new_tokens (a sampling setting: ppo's only)" in converted.ignored
    assert {"ppo_target (ppo's only)", "ppo_whiten_rewards (ppo's only)"} <= set(converted.ignored)


def test_bf16_loads_the_weights_in_bf16_as_llamafactory_does_unless_sharded_in_fp32(tmp_path):
    """LLaMA-Factory loads the model in its compute dtype (bf16 with `bf16: true`), except under
    FSDP or DeepSpeed ZeRO-3 without quantization. ft loaded fp32 weights on a CPU and autocast
    them: twice the weights' memory."""
    dtype = lambda lf, path=None: convert({**BASE, **lf}, path, check_data=False).config["model"].get("dtype")  # noqa: E731
    assert dtype({"bf16": True}) == "bfloat16" and dtype({"fp16": True}) == "float16" and dtype({}) is None
    assert dtype({"bf16": True, "fsdp": "full_shard"}) is None
    for stage, want in ((3, None), (2, "bfloat16")):
        (tmp_path / f"z{stage}.json").write_text(json.dumps({"zero_optimization": {"stage": stage}}))
        assert dtype({"bf16": True, "deepspeed": f"z{stage}.json"}, tmp_path / "lf.yaml") == want
    assert dtype({"bf16": True, "deepspeed": "missing.json"}, tmp_path / "lf.yaml") is None
    assert dtype({"bf16": True, "deepspeed": "missing.json", "quantization_bit": 4}) == "bfloat16"


@pytest.mark.parametrize(("lf", "message"), [
    ({"adapter_name_or_path": "saves/sft", "export_dir": "out/merged", "export_size": 5},
     "x.yaml is a LLaMA-Factory export config (export_dir), not a training one: run "
     "`ft export saves/sft --out out/merged --base m --max-shard-size 5GB`"),
    ({"export_dir": "out/merged"}, "x.yaml is a LLaMA-Factory export config (export_dir), not a training one, "
     "and names no adapter to merge (adapter_name_or_path)"),
    ({"adapter_name_or_path": "saves/sft", "do_predict": True, "eval_dataset": "e", "predict_with_generate": True},
     "x.yaml is a LLaMA-Factory prediction config (do_predict), not a training one: ft has no batch "
     "prediction; chat with the model (`ft chat --model m --adapter saves/sft`) or serve it (`ft serve`)"),
    ({"adapter_name_or_path": "saves/sft", "infer_backend": "huggingface"},
     "x.yaml is a LLaMA-Factory inference config (no dataset), not a training one: run "
     "`ft chat --model m --adapter saves/sft` (or `ft serve`)"),
    ({"stage": "sft", "do_train": True, "tokenized_path": "cache/tok"},
     "x.yaml trains on LLaMA-Factory's tokenized_path alone, which ft does not read: give the dataset it was "
     "built from (dataset, dataset_dir); ft caches its own tokenization"),
], ids=["export", "export-without-adapter", "predict", "inference", "tokenized-path"])
def test_a_llamafactory_yaml_that_does_not_train_says_which_ft_command_does_its_job(lf, message):
    with pytest.raises(FtError) as raised:
        convert({"model_name_or_path": "m", "template": "llama3", **lf}, Path("x.yaml"), check_data=False)
    assert str(raised.value) == message


def test_a_key_llamafactory_does_not_know_is_named_with_the_closest_it_does():
    converted = convert({**BASE, "lora_rnak": 8, "learning_rat": 1e-4}, None, check_data=False)
    assert converted.ignored == ["lora_rnak (not a LLaMA-Factory 0.9.5 or TrainingArguments key; did you mean lora_rank?)",
                                 "learning_rat (not a LLaMA-Factory 0.9.5 or TrainingArguments key; did you mean "
                                 "learning_rate?)"]


def test_transformers_training_arguments_pass_through_to_train():
    lf = {**BASE, "neftune_noise_alpha": 5, "save_only_model": True, "eval_on_start": True, "optim": "adamw_torch",
          "enable_liger_kernel": True, "use_dft_loss": True, "model_revision": "v2", "do_train": True}
    converted = convert(lf, None, check_data=False)
    train = converted.config["train"]
    assert train == {"stage": "sft", "output_dir": "o", "neftune_noise_alpha": 5, "save_only_model": True,
                     "eval_on_start": True, "optim": "adamw_torch", "use_liger_kernel": True, "loss_type": "dft"}
    assert converted.config["model"] == {"source": "m", "revision": "v2"}
    assert converted.ignored == ["do_train (ft always trains)"]


def test_dpo_terms_llamafactory_adds_map_to_trl_losses():
    dpo = {**BASE, "stage": "dpo", "pref_ftx": 0.5, "dpo_label_smoothing": 0.1, "ld_alpha": 0.3}
    train = convert(dpo, None, check_data=False).config["train"]
    assert train["loss_type"] == ["sigmoid", "sft"] and train["loss_weights"] == [1.0, 0.5]
    assert train["label_smoothing"] == 0.1 and train["ld_alpha"] == 0.3
    simpo = convert({**dpo, "pref_loss": "simpo"}, None, check_data=False)
    assert simpo.config["train"]["loss_type"] == "simpo" and "label_smoothing" not in simpo.config["train"]
    assert [line.split(" ")[0] for line in simpo.ignored] == ["pref_ftx", "dpo_label_smoothing", "ld_alpha"]


def test_adapter_name_or_path_continues_that_adapter():
    lf = {**BASE, "adapter_name_or_path": "saves/sft", "lora_rank": 8}
    converted = convert(lf, None, check_data=False)
    assert converted.config["adapter"]["start_from"] == "saves/sft" and not converted.ignored
    for extra, message in (({"adapter_name_or_path": "a,b"}, "names 2 adapters; ft continues one"),
                           ({"create_new_adapter": True}, "create_new_adapter: true trains a new adapter"),
                           ({"finetuning_type": "full"}, "with finetuning_type full")):
        with pytest.raises(FtError, match=message) as raised:
            convert({**lf, **extra}, None, check_data=False)
        assert "ft export ADAPTER --out DIR" in str(raised.value)


LF_PPO = """
model_name_or_path: {model}
reward_model: {reward}
stage: ppo
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
dataset: my_alpaca
dataset_dir: {data}
template: qwen
cutoff_len: 64
max_samples: 8
output_dir: {out}
logging_steps: 1
max_steps: 2
per_device_train_batch_size: 4
learning_rate: 1.0e-5
ppo_epochs: 2
max_new_tokens: 8
top_k: 0
top_p: 0.9
"""


def test_a_llamafactory_ppo_yaml_names_its_reward_model_and_sampling(lf_dir):
    lf = yaml.safe_load(LF_PPO.format(model="m", reward="saves/rm", data=lf_dir / "data", out="o"))
    converted = convert(lf, None, check_data=False)
    train = converted.config["train"]
    assert train["rewards"] == ["saves/rm"] and train["num_ppo_epochs"] == 2 and train["max_completion_length"] == 8
    assert train["top_k"] == 0 and train["top_p"] == 0.9
    # LLaMA-Factory's PPO adapts the KL coefficient from 0.2 toward ppo_target (6 unless given)
    assert (train["kl_coef"], train["kl_target"]) == (0.2, 6.0) and "score_norm" not in train
    assert [line.split(" ")[0] for line in converted.ignored] == ["do_train"]
    tuned = convert({**lf, "ppo_target": 1.5, "ppo_score_norm": True, "ppo_whiten_rewards": True}, None,
                    check_data=False).config["train"]
    assert (tuned["kl_target"], tuned["score_norm"], tuned["whiten_rewards"]) == (1.5, True, True)
    adapters = convert({**lf, "reward_model_adapters": "saves/rm-adapter"}, None, check_data=False)
    assert adapters.config["train"]["rewards"] == ["saves/rm-adapter"]
    with pytest.raises(FtError, match="reward_model_type: api .* is not supported by ft"):
        convert({**lf, "reward_model_type": "api"}, None, check_data=False)


LF_RM = """
model_name_or_path: {model}
stage: rm
do_train: true
finetuning_type: lora
lora_rank: 8
dataset: my_pairs
dataset_dir: {data}
template: qwen
cutoff_len: 64
output_dir: {out}
logging_steps: 2
max_steps: 10
per_device_train_batch_size: 4
learning_rate: 1.0e-2
"""


@pytest.mark.slow
def test_llamafactory_rm_then_ppo_yamls_run_unchanged(lf_dir, tiny_chat_dir):
    """LLaMA-Factory's pipeline: an rm YAML, then a ppo YAML whose reward_model is the rm's output_dir."""
    pairs = [{"instruction": f"Is {i} a number?", "chosen": "yes it is", "rejected": "no it is"} for i in range(32)]
    (lf_dir / "data" / "pairs.json").write_text(json.dumps(pairs))
    info = json.loads((lf_dir / "data" / "dataset_info.json").read_text())
    info["my_pairs"] = {"file_name": "pairs.json", "ranking": True,
                        "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}}
    (lf_dir / "data" / "dataset_info.json").write_text(json.dumps(info))
    rm_yaml, ppo_yaml = lf_dir / "rm.yaml", lf_dir / "ppo.yaml"
    rm_yaml.write_text(LF_RM.format(model=tiny_chat_dir, data="data", out=lf_dir / "saves" / "rm"))
    ppo_yaml.write_text(LF_PPO.format(model=tiny_chat_dir, reward=lf_dir / "saves" / "rm", data="data",
                                      out=lf_dir / "saves" / "ppo"))
    rm = read_metrics(run_training(rm_yaml).metrics_file)
    assert [r["accuracy"] for r in rm if "accuracy" in r][-1] == 1.0
    ppo = read_metrics(run_training(ppo_yaml).metrics_file)
    rewards = [r["reward"] for r in ppo if "reward" in r]
    assert len(rewards) == 2 and all(math.isfinite(r) for r in rewards)


LF_PT = """
model_name_or_path: {model}
stage: pt
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
dataset: c4_demo
dataset_dir: {data}
cutoff_len: 32
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
output_dir: {out}
logging_steps: 1
per_device_train_batch_size: 4
learning_rate: 1.0e-2
num_train_epochs: 1.0
bf16: true
"""


@pytest.mark.slow
def test_a_llamafactory_pretraining_yaml_runs_unchanged(lf_dir, tiny_chat_dir):
    """Its pretraining data is an entry whose prompt column is the document ("columns": {"prompt":
    "text"}, as its c4_demo), and its YAMLs carry preprocessing_num_workers: 16. Both stopped ft's pt:
    the rows were refused for lacking an answer, and then blocks formed per worker's shard of 1
    short document made none."""
    docs = [f"the quick brown fox {i} jumps over the lazy dog." for i in range(16)]  # 13 tokens each
    (lf_dir / "data" / "c4_demo.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    info = json.loads((lf_dir / "data" / "dataset_info.json").read_text())
    info["c4_demo"] = {"file_name": "c4_demo.jsonl", "columns": {"prompt": "text"}}
    (lf_dir / "data" / "dataset_info.json").write_text(json.dumps(info))
    path = lf_dir / "pt.yaml"
    path.write_text(LF_PT.format(model=tiny_chat_dir, data="data", out=lf_dir / "saves" / "pt"))
    records = read_metrics(run_training(path).metrics_file)
    # 16 x 13 tokens in blocks of 32: 6 blocks, 2 steps of 4
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
