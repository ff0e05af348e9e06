"""`ft init STAGE`: every stage's starter config is valid and its data builds into rows for that
stage; the SFT and DPO starters train on the embedded model (their first steps here; the SFT
starter's whole epoch runs in CI's wheel check, as ft-train's README example)."""

import pytest
import yaml

from ft_core import FtError
from ft_train.config import load_run_config
from ft_train.starters import STAGES, write_starter


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_starter_is_a_valid_config_whose_data_builds(tmp_path, stage, smol_dir):
    from ft_train.run import stage_data
    from ft_train.stages import get_stage

    path = write_starter(stage, tmp_path)
    text = path.read_text()
    assert text.startswith(f"# ft {stage}:") and f"ft train {path.name}" in text
    config = load_run_config(path)
    assert config.train.stage == stage and config.model.source == "smollm2-135m-instruct"
    _, data, _ = stage_data(config, get_stage(stage))
    # every example row made it (pt packs its texts into cutoff_len blocks)
    assert data.examples >= (2 if stage == "pt" else 24) and not data.skipped_rows


def test_an_existing_file_is_kept_unless_forced(tmp_path):
    write_starter("sft", tmp_path)
    with pytest.raises(FtError, match="ft-sft.yaml exists; pass --force"):
        write_starter("sft", tmp_path)
    assert write_starter("sft", tmp_path, force=True).is_file()
    with pytest.raises(FtError, match=r"unknown stage 'dop' \(did you mean 'dpo'\?\)"):
        write_starter("dop", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_the_starter_trains_as_written(tmp_path, stage, smol_dir, monkeypatch):
    from ft_train import run_training
    from ft_train.metrics import read_metrics

    monkeypatch.chdir(tmp_path)  # output_dir is relative to the working directory
    path = write_starter(stage, tmp_path)
    config = yaml.safe_load(path.read_text())  # the first steps, as written otherwise
    config["train"]["max_steps"] = 3
    path.write_text(yaml.safe_dump(config))
    result = run_training(path)
    losses = [r["loss"] for r in read_metrics(tmp_path / f"outputs/{stage}_starter/metrics.jsonl") if "loss" in r]
    assert losses and all(loss == loss for loss in losses)  # trained, finite
    assert (tmp_path / f"outputs/{stage}_starter/adapter/adapter_model.safetensors").is_file(), result
