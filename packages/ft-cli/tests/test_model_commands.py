"""`ft export` merges a trained run's adapter; `ft model alias` names models."""

import pytest
import yaml
from typer.testing import CliRunner

from ft_cli.app import app

runner = CliRunner()


@pytest.mark.slow
def test_export_merges_a_runs_adapter_into_the_base_it_names(tiny_chat_dir, tmp_path):
    import torch

    from ft_models import add_lora, load_model

    run = tmp_path / "run"
    model = add_lora(load_model(str(tiny_chat_dir), dtype="float32"), r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    model.save_pretrained(run / "adapter")
    (run / "run_config.yaml").write_text(yaml.safe_dump({"model": {"source": str(tiny_chat_dir)}}))
    result = runner.invoke(app, ["export", str(run / "adapter"), "--out", str(tmp_path / "merged"), "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    assert f"into {tiny_chat_dir}" in result.stdout
    ids = torch.randint(0, 1000, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(load_model(str(tmp_path / "merged"), dtype="float32")(ids).logits,
                                   model(ids).logits, atol=1e-5, rtol=1e-4)
    assert (tmp_path / "merged" / "chat_template.jinja").is_file()


def test_export_without_a_base_says_to_pass_one(tmp_path):
    (tmp_path / "adapter").mkdir()
    result = runner.invoke(app, ["export", str(tmp_path / "adapter"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "pass --base" in result.stderr


def test_model_alias_commands(tiny_llama_dir):
    assert runner.invoke(app, ["model", "alias", "tiny", str(tiny_llama_dir)]).exit_code == 0
    listed = runner.invoke(app, ["model", "aliases"]).stdout
    assert "smollm2-135m-instruct (built in)" in listed and f"tiny -> {tiny_llama_dir}" in listed
    assert runner.invoke(app, ["model", "unalias", "tiny"]).exit_code == 0
    result = runner.invoke(app, ["model", "unalias", "tiny"])
    assert result.exit_code == 2 and "no user alias 'tiny'" in result.stderr
    from ft_models.aliases import user_aliases

    assert "tiny" not in user_aliases()


def test_an_alias_to_a_relative_folder_works_from_anywhere(tiny_llama_dir, tmp_path, monkeypatch):
    from ft_models import model_path, remove_alias

    monkeypatch.chdir(tiny_llama_dir.parent)
    result = runner.invoke(app, ["model", "alias", "rel", tiny_llama_dir.name])
    assert result.exit_code == 0 and result.stdout.strip() == f"rel -> {tiny_llama_dir}"
    monkeypatch.chdir(tmp_path)
    try:
        assert model_path("rel") == str(tiny_llama_dir)
    finally:
        remove_alias("rel")
