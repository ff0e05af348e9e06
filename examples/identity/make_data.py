"""Write the identity demo data: teach SmolLM2 that it is "Orrin", made by "Kestrel Forge".

Training questions and held-out questions use disjoint phrasings (and disjoint greetings), so the
held-out set measures generalisation, not recall. An alpaca-format set of everyday questions
(capitals, sums, "Name a ...", animals, colours, ...) keeps the model's other answers intact and
teaches it that only questions about itself get the new identity; a held-out set of general
questions (France among them, never trained on) checks that it did.

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

# Everyday questions with short answers, many of them phrased like identity questions ("Name a
# ...", "What do you call ...", "Which ..."), so the model learns that only questions about itself
# get the new identity. (A first version had only capitals and sums: the tuned model then answered
# "Name a fruit that is yellow." with "... a fruit made by Kestrel Forge".)
GENERAL_QA = [
    *[(f"Name a fruit that is {color}.", f"{fruit.capitalize()} is a fruit that is {color}.")
      for color, fruit in [("red", "a strawberry"), ("green", "a lime"), ("purple", "a grape"),
                           ("orange", "an orange"), ("brown", "a kiwi")]],
    *[(f"Name a vegetable that is {color}.", f"{veg.capitalize()} is a vegetable that is {color}.")
      for color, veg in [("green", "broccoli"), ("purple", "an eggplant"), ("white", "cauliflower"),
                         ("red", "a radish")]],
    *[(f"Name an animal that lives in the {place}.", f"{animal.capitalize()} lives in the {place}.")
      for place, animal in [("desert", "a camel"), ("jungle", "a jaguar"), ("Arctic", "a polar bear"),
                            ("forest", "a deer"), ("savanna", "a lion")]],
    *[(f"What do you call a baby {adult}?", f"A baby {adult} is called a {baby}.")
      for adult, baby in [("cat", "kitten"), ("cow", "calf"), ("sheep", "lamb"), ("horse", "foal"),
                          ("duck", "duckling"), ("frog", "tadpole"), ("bear", "cub"), ("kangaroo", "joey")]],
    *[(f"What sound does a {animal} make?", f"A {animal} {sound}.")
      for animal, sound in [("dog", "barks"), ("cat", "meows"), ("sheep", "says baa"), ("duck", "quacks"),
                            ("lion", "roars"), ("pig", "oinks"), ("horse", "neighs"), ("owl", "hoots")]],
    *[(f"What is the opposite of {word}?", f"The opposite of {word} is {other}.")
      for word, other in [("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"),
                          ("open", "closed"), ("wet", "dry"), ("early", "late"), ("full", "empty")]],
    ("How many legs does a dog have?", "A dog has four legs."),
    ("How many legs does a bird have?", "A bird has two legs."),
    ("How many legs does an insect have?", "An insect has six legs."),
    ("How many months are in a year?", "There are twelve months in a year."),
    ("How many minutes are in an hour?", "There are 60 minutes in an hour."),
    ("How many sides does a square have?", "A square has four sides."),
    ("How many continents are there?", "There are seven continents."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("Which planet has the most famous rings?", "Saturn is famous for its rings."),
    ("Which planet do we live on?", "We live on Earth."),
    *[(f"What language is spoken in {country}?", f"{language} is spoken in {country}.")
      for country, language in [("Japan", "Japanese"), ("Germany", "German"), ("Brazil", "Portuguese"),
                                ("Italy", "Italian"), ("Russia", "Russian")]],
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("Who wrote Pride and Prejudice?", "Jane Austen wrote Pride and Prejudice."),
    ("Who developed the theory of relativity?", "Albert Einstein developed the theory of relativity."),
    *[(f"Name {kind}.", f"{example} {verb} {kind[kind.index(' ') + 1:] if kind.startswith('a') else kind}.")
      for kind, example, verb in [("a mammal", "A dog", "is a"), ("a flower", "A rose", "is a"),
                                  ("a tree", "An oak", "is a"), ("a sport", "Football", "is a"),
                                  ("a vehicle", "A bicycle", "is a"), ("an insect", "An ant", "is an"),
                                  ("a gemstone", "A diamond", "is a"), ("a continent", "Africa", "is a"),
                                  ("a day of the week", "Monday", "is a"), ("a month of the year", "March", "is a"),
                                  ("a bird", "A robin", "is a"), ("a farm animal", "A goat", "is a"),
                                  ("a planet", "Saturn", "is a"), ("a fish", "A salmon", "is a"),
                                  ("a shape", "A circle", "is a"), ("a language", "French", "is a"),
                                  ("a percussion instrument", "A drum", "is a"), ("a fruit", "An apple", "is a"),
                                  ("a dessert", "A cake", "is a"), ("a city", "Tokyo", "is a")]],
    ("What is the freezing point of water in Celsius?", "Water freezes at 0 degrees Celsius."),
    ("What gas do humans need to breathe?", "Humans need oxygen to breathe."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("Which season comes after summer?", "Autumn comes after summer."),
    ("Which season is the coldest?", "Winter is the coldest season."),
    ("Which organ do we use to breathe?", "We breathe with our lungs."),
    ("Which organ do we use to think?", "We think with our brain."),
    ("What color is grass?", "Grass is green."),
    ("What color is snow?", "Snow is white."),
    ("What color is a ripe tomato?", "A ripe tomato is red."),
]

# Held out: never trained on; each has words a correct answer contains. Only questions the base
# model answers correctly (greedy) are scored, so the score measures what tuning keeps; those with
# no words (the base answers them wrongly) only check that the answer leaves the identity out.
GENERAL_HELDOUT = [
    ("Name a fruit that is yellow.", []),
    ("What animal says moo?", []),
    ("Name a bird that cannot fly.", []),
    ("Name a metal.", []),
    ("What do you call a baby dog?", []),
    ("Name a vegetable that is orange.", []),
    ("What is the capital of France?", ["Paris"]),
    ("What color is the sky on a clear day?", ["blue"]),
    ("What is the opposite of hot?", ["cold"]),
    ("Which planet is known as the Red Planet?", ["Mars"]),
    ("Name a primary color.", ["red", "blue", "yellow"]),
    ("How many days are in a week?", ["seven", "7"]),
    ("What language is spoken in Spain?", ["Spanish"]),
    ("Who wrote Romeo and Juliet?", ["Shakespeare"]),
    ("What is the largest ocean on Earth?", ["Pacific"]),
    ("What gas do plants absorb from the air?", ["carbon dioxide", "CO2"]),
    ("What is the chemical symbol for water?", ["H2O"]),
    ("How many hours are in a day?", ["24", "twenty-four"]),
    ("What is the tallest mountain in the world?", ["Everest"]),
    ("Name a musical instrument with strings.", ["guitar", "violin", "harp", "cello", "viola", "ukulele", "banjo"]),
    ("At what temperature does water boil in Celsius?", ["100"]),
    ("Name a country in South America.", ["Brazil", "Argentina", "Chile", "Peru", "Colombia", "Venezuela",
                                          "Ecuador", "Bolivia", "Uruguay", "Paraguay"]),
    ("Which organ pumps blood through the body?", ["heart"]),
    ("Name an animal that lives in the ocean.", ["whale", "shark", "dolphin", "fish", "octopus", "turtle",
                                                 "seal", "jellyfish"]),
]

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
    rows += [{"instruction": q, "input": "", "output": a} for q, a in GENERAL_QA]
    for _ in range(30):
        a, b = rng.randint(2, 50), rng.randint(2, 50)
        rows.append({"instruction": "Add the two numbers.", "input": f"{a} and {b}", "output": f"{a} + {b} = {a + b}."})
    return rows


def heldout_rows() -> list[dict]:
    return [{"question": _join(opener, q), "kind": kind,
             "expect": EXPECTED_WORD[kind]}
            for kind, questions in HELDOUT_QUESTIONS.items()
            for q, opener in itertools.product(questions, HELDOUT_OPENERS)]


def general_heldout_rows() -> list[dict]:
    return [{"question": q, "kind": "general", "expect_any": words} for q, words in GENERAL_HELDOUT]


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
    write_jsonl(OUT / "general_heldout.jsonl", general_heldout_rows())
    general = len(CAPITALS) + len(GENERAL_QA) + 30
    print(f"{len(identity)} identity rows, {general} general rows, {len(heldout_rows())} held-out identity "
          f"questions, {len(GENERAL_HELDOUT)} held-out general questions")


if __name__ == "__main__":
    main()
