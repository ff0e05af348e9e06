"""ft serve against a live server on loopback, on the embedded SmolLM2: answers equal `ft chat`'s,
streamed and not, through raw HTTP and the official openai client; 20 concurrent clients; every
bad request a 4xx with an OpenAI-style body; a client killed mid-stream frees the worker."""

import json
import threading
import time

import httpx
import pytest

from ft_models import ChatModel, GenerationOptions
from ft_serve import Engine, running

pytestmark = pytest.mark.slow  # the embedded model generates

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 plus 2?",
             "Say hello in Spanish.", "What do bees make?"]


@pytest.fixture(scope="module")
def chat(smol_dir):
    return ChatModel.load(str(smol_dir), options=GenerationOptions(max_new_tokens=16))


@pytest.fixture(scope="module")
def server(chat):
    engine = Engine(chat, name="smollm2")
    with running(engine) as url:
        yield url, engine
    engine.close()


def post(url: str, path: str, **body) -> httpx.Response:
    return httpx.post(url + path, json={"model": "smollm2", **body}, timeout=120)


def streamed(url: str, path: str, **body) -> tuple[str, list[dict]]:
    """The streamed text and every event, read from the raw server-sent events."""
    with httpx.stream("POST", url + path, json={"model": "smollm2", "stream": True, **body}, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]  # events are separated by blank lines
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    pieces = [c.get("delta", {}).get("content") or c.get("text") or "" for e in events for c in e["choices"]]
    return "".join(pieces), events


def test_chat_answers_equal_ft_chats_streamed_or_not(server, chat):
    url, _ = server
    want = chat.reply(QUESTION)
    body = post(url, "/v1/chat/completions", messages=QUESTION, max_tokens=16).json()
    assert body["object"] == "chat.completion" and body["model"] == "smollm2"
    assert body["choices"][0]["message"]["content"].strip() == want
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    assert body["usage"]["completion_tokens"] <= 16 and body["usage"]["prompt_tokens"] > 10
    text, events = streamed(url, "/v1/chat/completions", messages=QUESTION, max_tokens=16,
                            stream_options={"include_usage": True})
    assert text.strip() == want
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-2]["choices"][0]["finish_reason"] == body["choices"][0]["finish_reason"]
    assert events[-1]["usage"] == body["usage"]


def test_completions_continue_the_raw_prompt(server, chat):
    import torch

    url, _ = server
    prompt = "The capital of France is"
    ids = chat.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = chat.model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=chat.tokenizer.pad_token_id)
    want = chat.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    body = post(url, "/v1/completions", prompt=prompt, max_tokens=8).json()
    assert body["choices"][0]["text"] == want and body["object"] == "text_completion"
    assert streamed(url, "/v1/completions", prompt=prompt, max_tokens=8)[0] == want


def test_stop_strings_and_seeds(server, chat):
    url, _ = server
    want = chat.reply(QUESTION)
    word = want.split()[2]  # a word inside the answer
    body = post(url, "/v1/chat/completions", messages=QUESTION, max_tokens=16, stop=[word]).json()
    cut = body["choices"][0]["message"]["content"]
    assert word not in cut and want.startswith(cut.strip()) and body["choices"][0]["finish_reason"] == "stop"
    assert streamed(url, "/v1/chat/completions", messages=QUESTION, max_tokens=16, stop=word)[0] == cut
    sampled = [post(url, "/v1/chat/completions", messages=QUESTION, max_tokens=12, temperature=1.0, seed=7).json()
               for _ in range(2)]
    assert sampled[0]["choices"][0]["message"] == sampled[1]["choices"][0]["message"]


def test_twenty_concurrent_clients_all_get_their_answers(server, chat):
    url, engine = server
    want = {q: chat.reply([{"role": "user", "content": q}]) for q in QUESTIONS}
    answers: dict[int, str] = {}

    def client(i: int) -> None:
        question = [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
        if i % 2:
            answers[i] = streamed(url, "/v1/chat/completions", messages=question, max_tokens=16)[0]
        else:
            answers[i] = post(url, "/v1/chat/completions", messages=question, max_tokens=16).json()[
                "choices"][0]["message"]["content"]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert {i: a.strip() for i, a in answers.items()} == {i: want[QUESTIONS[i % len(QUESTIONS)]] for i in range(20)}
    assert engine.waiting == 0


BAD = {
    "malformed JSON": (dict(content=b'{"model": "smollm2", "messages": [', headers={"content-type": "application/json"}),
                       400, "not valid JSON", None),
    "missing messages": (dict(json={"model": "smollm2"}), 400, "'messages' is required", "messages"),
    "empty messages": (dict(json={"model": "smollm2", "messages": []}), 400, "messages", "messages"),
    "wrong role": (dict(json={"model": "smollm2", "messages": [{"role": "wizard", "content": "hi"}]}), 400,
                   "messages.0.role", "messages"),
    "unknown model": (dict(json={"model": "smollm3", "messages": QUESTION}), 404, "did you mean 'smollm2'", "model"),
    "prompt longer than the context": (dict(json={"model": "smollm2", "max_tokens": 8, "messages": [
        {"role": "user", "content": "hello " * 9000}]}), 400, "context is 8192 tokens", "messages"),
    "max_tokens 0": (dict(json={"model": "smollm2", "messages": QUESTION, "max_tokens": 0}), 400, "max_tokens",
                     "max_tokens"),
    "negative max_tokens": (dict(json={"model": "smollm2", "messages": QUESTION, "max_tokens": -5}), 400,
                            "greater than 0", "max_tokens"),
    "n 2": (dict(json={"model": "smollm2", "messages": QUESTION, "n": 2}), 400, "n must be 1", "n"),
    "not an object": (dict(json=[1, 2]), 400, "", None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_get_a_4xx_with_an_openai_error_body(server, case):
    url, _ = server
    kwargs, status, says, param = BAD[case]
    r = httpx.post(url + "/v1/chat/completions", timeout=60, **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert says in error["message"] and error["type"] and error["param"] == param
    assert "Traceback" not in r.text
    if case == "unknown model":
        assert error["code"] == "model_not_found"
    if case.startswith("prompt longer"):
        assert error["code"] == "context_length_exceeded"


def test_unknown_paths_and_the_server_keeps_serving(server, chat):
    url, _ = server
    r = httpx.get(url + "/v1/engines", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert httpx.get(url + "/health", timeout=30).json()["status"] == "ok"
    assert httpx.get(url + "/v1/models", timeout=30).json()["data"][0]["id"] == "smollm2"
    body = post(url, "/v1/chat/completions", messages=QUESTION, max_tokens=16).json()
    assert body["choices"][0]["message"]["content"].strip() == chat.reply(QUESTION)


def test_an_api_key_is_required_when_set(chat):
    engine = Engine(chat, name="smollm2")
    with running(engine, api_key="s3cret") as url:
        none = httpx.get(url + "/v1/models", timeout=30)
        wrong = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer nope"}, timeout=30)
        right = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert none.status_code == wrong.status_code == 401 and right.status_code == 200
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(url + "/health", timeout=30).status_code == 200  # liveness needs no key
    engine.close()


def test_a_client_killed_mid_stream_frees_the_worker(server, chat):
    url, engine = server
    story = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]
    with httpx.stream("POST", url + "/v1/chat/completions", timeout=120,
                      json={"model": "smollm2", "messages": story, "max_tokens": 400, "stream": True}) as r:
        for line in r.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                break  # the first words arrived: hang up
    deadline = time.monotonic() + 60
    while not any(res.finish_reason == "cancelled" for res in engine.finished) and time.monotonic() < deadline:
        time.sleep(0.1)
    cancelled = [res for res in engine.finished if res.finish_reason == "cancelled"]
    assert cancelled and cancelled[-1].completion_tokens < 400  # stopped, not generated to the end
    body = post(url, "/v1/chat/completions", messages=QUESTION, max_tokens=16).json()
    assert body["choices"][0]["message"]["content"].strip() == chat.reply(QUESTION)
    assert engine.waiting == 0


def test_the_official_openai_client(server, chat):
    from openai import OpenAI

    url, _ = server
    client = OpenAI(base_url=url + "/v1", api_key="unused")
    want = chat.reply(QUESTION)
    answer = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=16)
    assert answer.choices[0].message.content.strip() == want
    stream = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=16, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices).strip() == want
    text = client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=8)
    assert text.choices[0].text.strip()
    from openai import NotFoundError

    with pytest.raises(NotFoundError, match="'gpt-4o' does not exist") as error:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert error.value.code == "model_not_found"
