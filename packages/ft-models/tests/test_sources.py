import os

import pytest

from ft_core import FtError
from ft_models import model_path, resolve_source


def test_kinds(tmp_path):
    assert resolve_source("smollm2-135m-instruct").kind == "alias"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_source(str(tmp_path)).kind == "folder"
    assert resolve_source("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_source(str(gguf)).kind == "gguf"


def test_unknown_alias_lists_the_known_ones():
    with pytest.raises(FtError) as info:
        resolve_source("smollm-135m")
    assert "unknown model 'smollm-135m'" in str(info.value)
    assert "smollm2-135m-instruct" in str(info.value)


def test_folder_without_config_and_missing_gguf(tmp_path):
    with pytest.raises(FtError, match="has no config.json"):
        resolve_source(str(tmp_path))
    with pytest.raises(FtError, match="GGUF file .*missing.gguf does not exist"):
        resolve_source(str(tmp_path / "missing.gguf"))


@pytest.mark.slow
def test_embedded_model_is_converted_once_then_reused(smol_dir, capsys, monkeypatch):
    from ft_models import gguf_convert

    folder = smol_dir
    files = {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "ft-converted.json"}
    assert files <= set(os.listdir(folder))
    stamp = os.stat(os.path.join(folder, "model.safetensors")).st_mtime_ns

    def no_second_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf_convert, "_convert", no_second_conversion)
    again = model_path("smollm2-135m-instruct")
    assert again == folder
    assert os.stat(os.path.join(folder, "model.safetensors")).st_mtime_ns == stamp
    assert "converting" not in capsys.readouterr().out


def test_hub_token_is_passed_but_never_shown(monkeypatch, caplog):
    """The token goes to from_pretrained as ``token=`` (never ``use_auth_token``) and appears in no
    error or log line when loading fails (here: offline)."""
    import logging

    from ft_models import load_tokenizer
    from ft_models.loading import _hub_kwargs

    monkeypatch.setenv("HF_TOKEN", "hf_envsecret")
    assert _hub_kwargs("org/model", None, None) == {"revision": None, "token": "hf_envsecret"}
    assert _hub_kwargs("org/model", "v1", "hf_argsecret") == {"revision": "v1", "token": "hf_argsecret"}
    assert _hub_kwargs("smollm2-135m-instruct", None, None) == {}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as info:
        load_tokenizer("ft-test-org/no-such-model", token="hf_argsecret")
    assert "hf_argsecret" not in str(info.value) and "hf_argsecret" not in caplog.text


def test_a_hub_id_that_cannot_load_fails_at_once(monkeypatch):
    from ft_core import FtError
    from ft_models import hub, load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tried = []  # "at once": no connection is even tried (not a wall-clock bound, which a slow machine breaks)
    monkeypatch.setattr(hub, "reachable", lambda url, timeout=3.0: tried.append(url) or False)
    with pytest.raises(FtError, match="'ft-test-org/no-such-model' is a hub id, it is not in the local cache and "
                                      "HF_HUB_OFFLINE is set"):
        load_model("ft-test-org/no-such-model")
    assert tried == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    asked = []
    monkeypatch.setattr(hub, "reachable", lambda url, timeout=3.0: asked.append(url) or False)
    with pytest.raises(FtError, match=r"the hub \(https://huggingface.co\) does not answer; check the network"):
        load_model("ft-test-org/no-such-model")
    assert asked == ["https://huggingface.co"]


def test_reachable_answers_for_a_local_listener_and_not_for_a_closed_port():
    import socket

    from ft_models.hub import reachable

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert reachable(f"http://127.0.0.1:{port}")
    assert not reachable(f"http://127.0.0.1:{port}", timeout=0.5)


def test_a_model_folder_without_tokenizer_or_weights_says_so(tiny_llama_dir, tmp_path):
    import shutil

    from ft_core import FtError
    from ft_models import load_model, load_tokenizer

    no_weights = tmp_path / "config-only"
    no_weights.mkdir()
    shutil.copy(tiny_llama_dir / "config.json", no_weights)
    with pytest.raises(FtError, match=f"model folder {no_weights} has no weights"):
        load_model(str(no_weights))
    with pytest.raises(FtError, match=f"model folder {tiny_llama_dir} has no tokenizer .*copy its files from the base"):
        load_tokenizer(str(tiny_llama_dir))
