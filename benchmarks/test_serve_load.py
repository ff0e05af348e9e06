"""`ft serve` under load: 20 concurrent clients, each a chat completion of 64 new tokens (greedy,
eos off: every answer is 64 tokens on both sides), on the embedded SmolLM2, against the floor:
the same 20 generations with plain transformers ``generate()`` in a loop in this process (the
server's model object, so the same weights, threads and dtype). Reported: requests/s and p50/p95
latency of the server, the floor's requests/s, and their ratio (goal, issue 12: the server's
wall time within 1.2x of the floor's)."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

CLIENTS, NEW_TOKENS = 20, 64
QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 plus 2?",
             "Say hello in Spanish.", "What do bees make?"]


@pytest.fixture(scope="module")
def chat():
    from ft_models import ChatModel, GenerationOptions

    chat = ChatModel.load("smollm2-135m-instruct", options=GenerationOptions(max_new_tokens=NEW_TOKENS))
    chat.model.generation_config.eos_token_id = None  # eos off: the same 64 tokens of work per request
    return chat


def floor(chat) -> tuple[float, list[int]]:
    import torch

    start, counts = time.perf_counter(), []
    for i in range(CLIENTS):
        batch = chat.encode([[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]])
        with torch.inference_mode():
            out = chat.model.generate(**batch, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                                      pad_token_id=chat.tokenizer.pad_token_id)
        counts.append(out.shape[1] - batch["input_ids"].shape[1])
    return time.perf_counter() - start, counts


def load(url: str) -> tuple[float, list[float], list[int]]:
    import httpx

    latencies, tokens = [0.0] * CLIENTS, [0] * CLIENTS

    def client(i: int) -> None:
        t0 = time.perf_counter()
        r = httpx.post(url + "/v1/chat/completions", timeout=600, json={
            "model": "smollm2", "max_tokens": NEW_TOKENS,
            "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]})
        latencies[i] = time.perf_counter() - t0
        tokens[i] = r.json()["usage"]["completion_tokens"]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, tokens


def test_serve_20_clients_vs_a_generate_loop(benchmark, chat):
    from ft_serve import Engine, running

    engine = Engine(chat, name="smollm2")
    floors: list[tuple[float, list[int]]] = []
    loads: list[tuple[float, list[float], list[int]]] = []
    with running(engine) as url:
        def floor_round() -> None:  # before each round, untimed by pytest-benchmark: the floor, timed here
            floors.append(floor(chat))

        def serve_round() -> None:  # what pytest-benchmark times: 20 clients against the server
            loads.append(load(url))

        # 3 rounds and a warm-up, the floor and the server alternating
        benchmark.pedantic(serve_round, setup=floor_round, rounds=3, warmup_rounds=1, iterations=1)
    engine.close()
    rounds = []
    for (floor_s, floor_tokens), (serve_s, latencies, tokens) in list(zip(floors, loads, strict=True))[1:]:
        assert tokens == floor_tokens == [NEW_TOKENS] * CLIENTS  # the same work on both sides
        rounds.append((serve_s, floor_s, latencies))
    serve_s, floor_s, latencies = sorted(rounds, key=lambda r: r[0] / r[1])[1]  # the median round
    lat = sorted(latencies)
    figures = {"requests_per_s": CLIENTS / serve_s, "floor_requests_per_s": CLIENTS / floor_s,
               "p50_s": statistics.median(lat), "p95_s": lat[int(0.95 * (len(lat) - 1))],
               "ratio": serve_s / floor_s, "ratios": [r[0] / r[1] for r in rounds],
               "baseline": "generate() loop", "goals": {"ratio": "<= 1.2"}}
    benchmark.extra_info.update(figures)
    print(f"\nft serve: {figures['requests_per_s']:.2f} req/s, p50 {figures['p50_s']:.2f} s, p95 {figures['p95_s']:.2f} s;"
          f" generate loop {figures['floor_requests_per_s']:.2f} req/s; server / floor wall time {figures['ratio']:.2f}x"
          f" (rounds {', '.join(f'{r:.2f}' for r in figures['ratios'])})")
