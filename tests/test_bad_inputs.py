"""Every entry of the bad-input corpus (tests/bad_inputs/cases.yaml) run as a real `ft` command:
exit code 2, one line on stderr that names the thing, no traceback, nothing on stdout, and no file
changed anywhere the command could reach (the corpus, the scratch folder, FT_HOME, the working
directory)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text())
FT = str(Path(sys.executable).parent / "ft")
pytestmark = pytest.mark.slow  # each case starts a process that imports torch and transformers


def _snapshot(*roots: Path) -> dict[str, tuple]:
    """path -> (size, mtime in ns, inode) of every file (and () for every folder) under ``roots``:
    any write, an atomic replace included, changes one of them. (Hashing contents instead read
    FT_HOME's converted model twice per case: 3.4 of each case's 3.8 s.)"""
    seen = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            stat = path.stat()
            seen[str(path)] = (stat.st_size, stat.st_mtime_ns, stat.st_ino) if path.is_file() else ()
    return seen


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_chat_dir, tiny_llama_dir, smol_dir):
    """{corpus}: the corpus copied with its placeholders filled; {made}: models and adapters that
    are built, not committed; {tmp}: an empty scratch folder."""
    from ft_models import add_lora, load_model

    root = tmp_path_factory.mktemp("bad-inputs")
    corpus, made, scratch = root / "corpus", root / "made", root / "tmp"
    shutil.copytree(CORPUS, corpus)
    scratch.mkdir()
    values = {"{corpus}": str(corpus), "{tiny}": str(tiny_chat_dir), "{made}": str(made), "{tmp}": str(scratch)}
    for config in (corpus / "configs").glob("*.yaml"):
        config.write_text(_fill(config.read_text(), values))
    (made / "no_tokenizer").mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_llama_dir / name, made / "no_tokenizer")
    shutil.copytree(tiny_chat_dir, made / "no_weights", ignore=shutil.ignore_patterns("*.safetensors"))
    add_lora(load_model(str(tiny_llama_dir), dtype="float32"), r=2, alpha=4).save_pretrained(made / "other_base_adapter")
    add_lora(load_model(str(tiny_chat_dir), dtype="float32"), r=2, alpha=4).save_pretrained(made / "run" / "adapter")
    (made / "run" / "run_config.yaml").write_text(yaml.safe_dump({"model": {"source": str(tiny_chat_dir)}}))
    return values


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c["run"][:3]) + f" #{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_with_exit_code_2(case, places, ft_home, tmp_path):
    args = [_fill(a, places) for a in case["run"]]
    watched = [Path(places[k]) for k in ("{corpus}", "{made}", "{tmp}", "{tiny}")] + [ft_home, tmp_path]
    before = _snapshot(*watched)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    done = subprocess.run([FT, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and _fill(case["says"], places) in lines[0]
    assert done.stdout == ""
    assert _snapshot(*watched) == before


@pytest.mark.slow
def test_a_byte_order_mark_is_read(places, tmp_path):
    done = subprocess.run([FT, "data", "preview", f"{places['{corpus}']}/data/bom.jsonl", "-n", "1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Say hi" in done.stdout and "[[hi<|im_end|>]]" in done.stdout  # piped: trained text marked without colour
    assert done.stderr == ""  # no third-party noise either


@pytest.mark.slow
def test_validate_reports_every_bad_line_and_every_bad_file(places, tmp_path):
    corpus = Path(places["{corpus}"])
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"instruction": "a", "output": "b"}\n{"instruction": \n[1, 2]\n{"instruction": "c", "output": "d"}\n'
                     '{"instruction": "e"}\n')
    files = [str(lines), str(corpus / "data/latin1.jsonl"), str(corpus / "data/missing.jsonl"), str(corpus / "data/good.jsonl")]
    done = subprocess.run([FT, "data", "validate", *files], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{lines} row 2: malformed JSON (Expecting value)",
        f"{lines} row 3: expected a JSON object, found a list",
        f"{lines} row 5: missing key 'output' (rows without an answer serve only pt, as documents, "
        "and the online stages ppo and grpo)",
        f"{corpus}/data/latin1.jsonl line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8",
        f"data file {corpus}/data/missing.jsonl does not exist",
    ]
    assert done.stdout.strip() == "6 good rows, 5 problems"
