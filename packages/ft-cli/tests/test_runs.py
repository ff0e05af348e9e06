"""What ft-cli reads from a run's folder."""

import yaml

from ft_cli.commands._runs import base_of


def test_the_base_is_read_from_the_run_beside_the_adapter_or_from_the_run_folder_itself(tmp_path):
    run = tmp_path / "saves" / "sft"
    (run / "adapter").mkdir(parents=True)
    (run / "run_config.yaml").write_text(yaml.safe_dump({"model": {"source": "smollm2-135m-instruct"}}))
    assert base_of(run / "adapter") == "smollm2-135m-instruct"
    assert base_of(run) == "smollm2-135m-instruct"  # LLaMA-Factory's YAMLs name the run's output_dir
    assert base_of(tmp_path / "elsewhere") is None and base_of(None) is None
