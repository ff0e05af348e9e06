"""ft serve over a layer-streamed model (what `ft serve --stream-budget` builds): the same answer as
the model loaded whole, every layer read from its file per token."""

import json

import httpx

from ft_models import ChatModel, GenerationOptions
from ft_serve import Engine, running
from ft_stream import LayerwiseModel, split


def test_a_streamed_model_serves_the_same_answer(tiny_chat_dir, tmp_path):
    options = GenerationOptions(max_new_tokens=8)
    whole = ChatModel.load(str(tiny_chat_dir), device="cpu", options=options)
    folder = split(tiny_chat_dir, tmp_path / "split", progress=False)
    files = json.loads((folder / "manifest.json").read_text())["files"]
    # no read-ahead: the working set is the rest and the computing layer, so both layers stream
    streamed = LayerwiseModel(folder, budget=files[-1]["bytes"] + files[0]["bytes"], prefetch=0, device="cpu")
    assert streamed.resident == set()  # nothing stays: every layer streams
    question = [{"role": "user", "content": "Hello there"}]
    engine = Engine(ChatModel(whole.tokenizer, streamed.model, options), name="tiny")
    with running(engine) as url:
        body = httpx.post(url + "/v1/chat/completions", timeout=60,
                          json={"model": "tiny", "messages": question, "max_tokens": 8}).json()
    engine.close()
    streamed.close()
    assert body["choices"][0]["message"]["content"].strip() == whole.reply(question)
    assert body["usage"]["completion_tokens"] == 8 or body["choices"][0]["finish_reason"] == "stop"
