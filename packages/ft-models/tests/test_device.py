"""Models for inference go where they will compute: ``device="auto"`` is the GPU where there is
one; an impossible device is one clear error. (The GPU cases are marked ``gpu``.)"""

import pytest
import torch

from ft_core import FtError
from ft_models import ChatModel, GenerationOptions, load_model
from ft_models.loading import resolve_device


def test_auto_is_the_cpu_without_a_gpu_and_impossible_devices_are_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(FtError, match="--device cuda: no CUDA device is visible here; use --device cpu"):
        resolve_device("cuda")
    with pytest.raises(FtError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_a_model_loaded_for_the_cpu_is_there_and_answers(tiny_chat_dir):
    chat = ChatModel.load(str(tiny_chat_dir), device="cpu", options=GenerationOptions(max_new_tokens=4))
    assert chat.model.device.type == "cpu"
    assert isinstance(chat.reply([{"role": "user", "content": "hi"}]), str)


@pytest.mark.gpu
def test_auto_puts_the_model_on_the_gpu_and_its_inputs_follow(tiny_chat_dir):
    chat = ChatModel.load(str(tiny_chat_dir), options=GenerationOptions(max_new_tokens=4))
    assert chat.model.device.type == "cuda"
    on_cpu = ChatModel.load(str(tiny_chat_dir), device="cpu", options=GenerationOptions(max_new_tokens=4))
    question = [{"role": "user", "content": "hi"}]
    assert chat.reply(question) == on_cpu.reply(question)  # greedy, fp32: the same answer
    pieces = []
    assert chat.reply(question, on_text=pieces.append).startswith("".join(pieces).strip())


@pytest.mark.gpu
def test_a_4bit_model_on_the_gpu_takes_its_inputs_there(tiny_chat_dir):
    pytest.importorskip("bitsandbytes")
    from ft_models import Quantization

    model = load_model(str(tiny_chat_dir), quantization=Quantization(bits=4), device="auto")
    chat = ChatModel(ChatModel.load(str(tiny_chat_dir), device="cpu").tokenizer, model,
                     GenerationOptions(max_new_tokens=4))
    assert model.device.type == "cuda" and isinstance(chat.replies([[{"role": "user", "content": "hi"}]])[0], str)
