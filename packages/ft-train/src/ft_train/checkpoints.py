"""Which checkpoint a rerun resumes from: the last *complete* one.

The Trainer writes a checkpoint file by file; a run killed meanwhile leaves a folder that
``get_last_checkpoint`` would pick and the resume would then fail on. After each save a callback
writes ``ft-checkpoint.json`` into the finished folder; only folders with it are resumed from.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

from ft_core import atomic_write_text

log = logging.getLogger("ft_train")
MARKER = "ft-checkpoint.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(output_dir: Path) -> list[Path]:
    """The run's ``checkpoint-N`` folders, oldest step first."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def is_complete(folder: Path) -> bool:
    """Our marker; for checkpoints of runs before it, the Trainer's state file (written last) parses."""
    if (folder / MARKER).is_file():
        return True
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return f"checkpoint-{state.get('global_step')}" == folder.name


def resume_point(output_dir: Path) -> tuple[Path | None, list[Path]]:
    """(the newest complete checkpoint or None, the incomplete ones after it)."""
    found = checkpoints(output_dir)
    for i in range(len(found) - 1, -1, -1):
        if is_complete(found[i]):
            return found[i], found[i + 1:]
    return None, found


def choose_resume(output_dir: Path) -> Path | None:
    """The checkpoint to resume from; incomplete ones after it are removed, each said in one line."""
    chosen, broken = resume_point(output_dir)
    for folder in broken:
        log.info("%s was cut off while being written; removing it", folder.name)
        shutil.rmtree(folder)
    return chosen


class CheckpointMarker(TrainerCallback):
    """Mark each checkpoint complete once the Trainer has written all of it."""

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            atomic_write_text(folder / MARKER, json.dumps({"global_step": state.global_step}) + "\n")
