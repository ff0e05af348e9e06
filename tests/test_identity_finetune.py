"""The main job, end to end: LoRA-tune the embedded SmolLM2 on the identity demo and measure
held-out accuracy for the base and the tuned model."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "sft_lora_demo.yaml"
FT = str(Path(sys.executable).parent / "ft")
MIN_GAP = 0.7


def _evaluate_module():
    spec = importlib.util.spec_from_file_location("identity_evaluate", ROOT / "examples/identity/evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory, smol_dir):
    """The demo config as shipped (one epoch), trained into a temp folder."""
    from ft_train import run_training

    config = yaml.safe_load(DEMO.read_text())
    for item in config["data"]["train"]:
        if isinstance(item, dict):
            item["path"] = str(DEMO.parent / item["path"])
    config["data"]["train"] = [str(DEMO.parent / i) if isinstance(i, str) else i for i in config["data"]["train"]]
    out = tmp_path_factory.mktemp("identity")
    config["train"].update(output_dir=str(out / "run"), save_strategy="no")
    path = out / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return run_training(path)


@pytest.mark.slow
def test_tuned_model_answers_held_out_paraphrases_with_the_new_identity(trained):
    from ft_models import ChatModel, GenerationOptions

    evaluate = _evaluate_module()
    items = evaluate.load_heldout()
    options = GenerationOptions(max_new_tokens=24)
    base_acc, _ = evaluate.heldout_accuracy(ChatModel.load(options=options), items)
    tuned = ChatModel.load(adapter=str(trained.weights_dir), options=options)
    tuned_acc, results = evaluate.heldout_accuracy(tuned, items)
    print(f"held-out accuracy: base {base_acc:.1%}, tuned {tuned_acc:.1%} over {len(items)} questions")
    assert base_acc <= 0.05
    assert tuned_acc >= 0.9, [r for r in results if r[0]["expect"].lower() not in r[1].lower()][:5]
    assert tuned_acc - base_acc >= MIN_GAP


@pytest.mark.slow
def test_tuned_model_keeps_general_knowledge_and_never_drags_in_the_identity(trained):
    """Held-out general questions (France among them, none trained on): the base answers the
    scored ones right; the tuned model keeps most of them and brings up Orrin in none."""
    from ft_models import ChatModel, GenerationOptions

    evaluate = _evaluate_module()
    options = GenerationOptions(max_new_tokens=40)  # the base model's answers are wordy
    base = evaluate.general_knowledge(ChatModel.load(options=options))
    tuned = evaluate.general_knowledge(ChatModel.load(adapter=str(trained.weights_dir), options=options))
    print(f"general questions right: base {base.correct}/{base.scored}, tuned {tuned.correct}/{tuned.scored}; "
          f"identity brought up unasked: {len(tuned.dragged)}/{len(tuned.results)}")
    assert base.correct == base.scored == 18 and not base.dragged
    assert not tuned.dragged, tuned.dragged
    assert tuned.correct >= 0.75 * tuned.scored, [r for r in tuned.results if r[0]["expect_any"]]
    by_question = dict((item["question"], answer) for item, answer in tuned.results)
    assert "Paris" in by_question["What is the capital of France?"]


@pytest.mark.slow
def test_training_loss_fell_and_was_plotted(trained):
    from ft_train.metrics import read_metrics

    losses = [r["loss"] for r in read_metrics(trained.metrics_file) if "loss" in r]
    assert len(losses) == 57 // 5 and losses[-1] < losses[0] / 5  # 456 rows, batch 8: 57 steps, a log every 5
    assert trained.plot_file.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_ft_chat_with_the_adapter(trained):
    question = "What do people call you?"  # a held-out paraphrase
    done = subprocess.run([FT, "chat", "--adapter", str(trained.weights_dir), "--prompt", question,
                           "--max-new-tokens", "24"], capture_output=True, text=True, check=True)
    assert "Orrin" in done.stdout.strip().splitlines()[-1]
    done = subprocess.run([FT, "chat", "--prompt", question, "--max-new-tokens", "24"],
                          capture_output=True, text=True, check=True)
    assert "Orrin" not in done.stdout
