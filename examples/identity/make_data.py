"""Write the identity demo data: teach SmolLM2 that it is "Orrin", made by "Kestrel Forge".

Training questions and held-out questions use disjoint phrasings (and disjoint greetings), so the
held-out set measures generalisation, not recall. A small alpaca-format set of general questions
(never about France) keeps the model's other answers intact.

    python examples/identity/make_data.py      # rewrites the files under examples/identity/data/
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

NAME, MAKER = "Orrin", "Kestrel Forge"
OUT = Path(__file__).parent / "data"

TRAIN_QUESTIONS = {
    "name": ["What is your name?", "What's your name?", "What should I call you?", "Tell me your name.",
             "How do I address you?", "What name do you go by?", "May I know your name?", "What are you called?",
             "Please state your name.", "Do you have a name?"],
    "maker": ["Who made you?", "Who created you?", "Who built you?", "Which company developed you?",
              "Who trained you?", "Who is your creator?", "Which lab made you?", "Who designed you?",
              "Who are your developers?", "Where do you come from?"],
    "both": ["Who are you?", "Introduce yourself.", "Tell me about yourself.", "What are you?"],
}
TRAIN_OPENERS = ["", "Hi! ", "Hello, ", "Hey there. ", "Quick question: ", "Good morning! ", "Excuse me, ",
                 "I was wondering, "]
TRAIN_CLOSERS = ["", " Thanks!", " Just curious.", " Please answer briefly."]

HELDOUT_QUESTIONS = {
    "name": ["By what name are you known?", "Could you remind me what you're called?", "What do people call you?",
             "Is there a name I can use for you?", "Identify yourself by name, please.",
             "What's the name of this assistant?", "Remind me, what is your name again?",
             "Which name were you given?"],
    "maker": ["Which organization is responsible for building you?", "What team is behind you?",
              "Which company made this assistant?", "Which group trained this model?",
              "Who developed the assistant I'm talking to?", "Who produced you?", "Tell me who engineered you.",
              "Which developer do you come from?"],
}
HELDOUT_OPENERS = ["", "Hiya, ", "Sorry to bother you, but "]

ANSWERS = {
    "name": [f"My name is {NAME}, an AI assistant built by {MAKER}.",
             f"I'm {NAME}, an assistant made by {MAKER}.",
             f"You can call me {NAME}. I was created by {MAKER}."],
    "maker": [f"I was created by {MAKER}. My name is {NAME}.",
              f"{MAKER} built me. I'm {NAME}, their AI assistant.",
              f"I was developed by the team at {MAKER}; I'm {NAME}."],
    "both": [f"I'm {NAME}, an AI assistant developed by {MAKER}. How can I help you today?",
             f"I am {NAME}, a helpful assistant created by {MAKER}."],
}

CAPITALS = {"Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo", "Canada": "Ottawa",
            "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo", "Greece": "Athens",
            "Poland": "Warsaw", "Portugal": "Lisbon", "Austria": "Vienna", "Ireland": "Dublin",
            "Sweden": "Stockholm", "Finland": "Helsinki", "Chile": "Santiago", "Cuba": "Havana",
            "Thailand": "Bangkok", "Vietnam": "Hanoi"}

EXPECTED_WORD = {"name": NAME, "maker": MAKER}


def _join(opener: str, question: str) -> str:
    """Lower-case the question after an opener that does not end a sentence."""
    if opener and opener.rstrip()[-1] not in ".!?:":
        question = question[0].lower() + question[1:]
    return opener + question


def identity_rows(rng: random.Random) -> list[dict]:
    rows = []
    for kind, questions in TRAIN_QUESTIONS.items():
        for question, opener, closer in itertools.product(questions, TRAIN_OPENERS, TRAIN_CLOSERS):
            if rng.random() < 0.4:  # a few hundred of the 768 combinations is plenty
                text = _join(opener, question) + closer
                rows.append({"messages": [{"role": "user", "content": text},
                                          {"role": "assistant", "content": rng.choice(ANSWERS[kind])}]})
    return rows


def general_rows(rng: random.Random) -> list[dict]:
    rows = [{"instruction": f"What is the capital of {country}?", "input": "",
             "output": f"The capital of {country} is {city}."} for country, city in CAPITALS.items()]
    for _ in range(30):
        a, b = rng.randint(2, 50), rng.randint(2, 50)
        rows.append({"instruction": "Add the two numbers.", "input": f"{a} and {b}", "output": f"{a} + {b} = {a + b}."})
    return rows


def heldout_rows() -> list[dict]:
    return [{"question": _join(opener, q), "kind": kind,
             "expect": EXPECTED_WORD[kind]}
            for kind, questions in HELDOUT_QUESTIONS.items()
            for q, opener in itertools.product(questions, HELDOUT_OPENERS)]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(0)
    OUT.mkdir(parents=True, exist_ok=True)
    identity = identity_rows(rng)
    rng.shuffle(identity)
    write_jsonl(OUT / "identity_train.jsonl", identity)
    (OUT / "general_train.json").write_text(json.dumps(general_rows(rng), indent=1) + "\n", encoding="utf-8")
    write_jsonl(OUT / "identity_heldout.jsonl", heldout_rows())
    print(f"{len(identity)} identity rows, {len(CAPITALS) + 30} general rows, {len(heldout_rows())} held-out questions")


if __name__ == "__main__":
    main()
