"""train.deepspeed: a short config is completed with what the Trainer decides; bad files are named."""

import json
import logging

import pytest

from ft_core import FtError
from ft_train.deepspeed_config import DECIDED_BY_TRAINER, complete_deepspeed_config, require_deepspeed


def test_a_short_config_gets_the_trainers_values_as_auto_and_keeps_its_own(tmp_path, caplog):
    given = {"zero_optimization": {"stage": 2}, "gradient_clipping": 0.5}
    with caplog.at_level(logging.INFO, logger="ft_train"):
        done = complete_deepspeed_config(given, tmp_path / "run.yaml")
    assert done["gradient_clipping"] == 0.5  # the user's value stays
    assert done["train_micro_batch_size_per_gpu"] == done["train_batch_size"] == "auto"
    assert done["bf16"] == done["fp16"] == {"enabled": "auto"}
    assert done["zero_optimization"] == {"stage": 2}  # the gather on save is a ZeRO-3 matter
    assert given == {"zero_optimization": {"stage": 2}, "gradient_clipping": 0.5}  # not changed in place
    (line,) = [r.getMessage() for r in caplog.records if "train.deepspeed" in r.getMessage()]
    assert "train_batch_size" in line and "gradient_clipping" not in line


def test_zero3_gathers_16bit_weights_on_save_unless_told_not_to(tmp_path):
    done = complete_deepspeed_config({"zero_optimization": {"stage": 3}}, tmp_path / "run.yaml")
    assert done["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    kept = complete_deepspeed_config(
        {"zero_optimization": {"stage": 3, "stage3_gather_16bit_weights_on_model_save": False}}, tmp_path / "run.yaml")
    assert kept["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is False


def test_a_json_file_is_found_beside_the_config(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    full = {key: 1 for key in DECIDED_BY_TRAINER} | {"zero_optimization": {"stage": 1}}
    (tmp_path / "configs" / "ds_z1.json").write_text(json.dumps(full))
    monkeypatch.chdir(tmp_path)
    assert complete_deepspeed_config("ds_z1.json", tmp_path / "configs" / "run.yaml") == full  # nothing to fill
    assert complete_deepspeed_config("configs/ds_z1.json", tmp_path / "configs" / "run.yaml") == full  # from cwd


@pytest.mark.parametrize("content, says", [(None, "no file ds.json"), ("{\"zero_optimization\": ", "not valid JSON"),
                                           ("[1, 2]", "holds a list, not a JSON object")])
def test_a_bad_file_is_named_with_what_is_wrong(tmp_path, monkeypatch, content, says):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "ds.json").write_text(content)
    with pytest.raises(FtError, match="train.deepspeed") as caught:
        complete_deepspeed_config("ds.json", tmp_path / "run.yaml")
    assert says in str(caught.value) and "run.yaml" in str(caught.value)


def test_a_missing_deepspeed_is_named_with_an_install_that_keeps_this_torch(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:  # the dev environment has it; the floor venvs do not
        require_deepspeed(tmp_path / "run.yaml")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    with pytest.raises(FtError, match="run.yaml: train.deepspeed needs DeepSpeed, which is not installed: "
                                      "pip install --no-build-isolation deepspeed"):
        require_deepspeed(tmp_path / "run.yaml")
