"""The final weights: one writer, and under FSDP/DeepSpeed every process joins the gathering save."""

from pathlib import Path

import pytest

from ft_train import saving
from ft_train.launch import sharding_dropped


class FakeTokenizer:
    def save_pretrained(self, folder):
        (Path(folder) / "tokenizer.json").write_text("{}")


class FakeTrainer:
    def __init__(self, fsdp: bool):
        self.is_fsdp_enabled, self.is_deepspeed_enabled, self.saved = fsdp, False, []

    def save_model(self, folder):
        self.saved.append(folder)
        if Path(folder).is_dir():  # only the first process's folder exists on a shared disk here
            (Path(folder) / "adapter_model.safetensors").write_bytes(b"w")


def test_one_process_writes_the_folder_and_the_others_do_nothing(tmp_path):
    others = FakeTrainer(fsdp=False)
    saving.save_weights(others, FakeTokenizer(), tmp_path / "adapter", "card", is_main=False)
    assert others.saved == [] and not (tmp_path / "adapter").exists()
    first = FakeTrainer(fsdp=False)
    saving.save_weights(first, FakeTokenizer(), tmp_path / "adapter", "card", is_main=True)
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == \
        [".ft-folder", "README.md", "adapter_model.safetensors", "tokenizer.json"]


def test_sharded_runs_save_from_every_process_into_the_first_ones_folder(tmp_path, monkeypatch):
    """A non-first process that skipped save_model would leave the first one waiting in FSDP's
    gather; both must call it, with the folder the first one made."""
    sent = []
    monkeypatch.setattr(saving, "_broadcast", lambda value: sent.append(value) or value)
    first = FakeTrainer(fsdp=True)
    saving.save_weights(first, FakeTokenizer(), tmp_path / "adapter", "card", is_main=True)
    (folder,) = sent
    assert first.saved == [folder] and Path(folder).parent == tmp_path and not Path(folder).exists()
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    monkeypatch.setattr(saving, "_broadcast", lambda value: folder)
    other = FakeTrainer(fsdp=True)
    saving.save_weights(other, FakeTokenizer(), tmp_path / "adapter", "card", is_main=False)
    assert other.saved == [folder]


@pytest.mark.parametrize("asked", ["fsdp", "deepspeed"])
def test_sharding_that_accelerate_dropped_is_named(asked):
    from types import SimpleNamespace

    args = SimpleNamespace(fsdp=asked == "fsdp", deepspeed={"zero_optimization": {}} if asked == "deepspeed" else None)
    assert sharding_dropped(args, FakeTrainer(fsdp=False)) == asked
    assert sharding_dropped(SimpleNamespace(fsdp=None, deepspeed=None), FakeTrainer(fsdp=False)) is None
    assert sharding_dropped(SimpleNamespace(fsdp=True, deepspeed=None), FakeTrainer(fsdp=True)) is None


def test_fsdp_in_a_single_process_is_refused_with_the_way_out(tmp_path):
    from transformers import TrainingArguments

    from ft_core import FtError
    from ft_train.launch import check_sharding

    with pytest.raises(FtError, match=r"--nproc N"):
        check_sharding(TrainingArguments(output_dir=str(tmp_path), fsdp=True, use_cpu=True))
    check_sharding(TrainingArguments(output_dir=str(tmp_path), use_cpu=True))  # no fsdp: nothing to say
