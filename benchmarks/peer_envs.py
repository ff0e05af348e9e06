"""Which interpreter runs a peer: plain TRL runs in its own venv (.peers/trl, made by
peers/setup.sh) when it is there, else in the dev venv (same TRL version, noted in the results);
a peer venv has no ft packages, so it is handed the embedded model's folder in FT_BENCH_MODEL_DIR."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRL_PYTHON = ROOT / ".peers" / "trl" / "bin" / "python"
MODEL = "smollm2-135m-instruct"


def python_for(tool: str) -> str:
    """The interpreter for ``tool`` (``trl...`` tools: the plain-TRL venv when set up)."""
    return str(TRL_PYTHON) if tool.startswith("trl") and TRL_PYTHON.is_file() else sys.executable


def peer_env() -> dict:
    """The environment for a runner process: the embedded model's folder, resolved here."""
    from ft_models import model_path

    return {**os.environ, "FT_BENCH_MODEL_DIR": str(model_path(MODEL))}


def model_dir() -> Path:
    """In a runner: the embedded model's folder (FT_BENCH_MODEL_DIR, or ft-models where installed)."""
    if os.environ.get("FT_BENCH_MODEL_DIR"):
        return Path(os.environ["FT_BENCH_MODEL_DIR"])
    from ft_models import model_path

    return model_path(MODEL)
