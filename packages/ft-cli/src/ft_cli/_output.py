"""What `ft` prints: the ft libraries' log lines ("ft: ..."; info on stdout, warnings on stderr),
and none of the third-party noise.

Libraries below us log warnings that a user can do nothing about, through Python's last-resort
handler straight to stderr (bitsandbytes, on every command that imports peft: "Failed to load CPU
gemm_4bit_forward ... No module named 'kernels'" — `kernels` cannot work offline anyway), and
raise deprecation warnings meant for their callers' developers (peft and TRL reading
transformers 5.2x's renamed `is_gradient_checkpointing`). ``FT_VERBOSE=1`` keeps all of it.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

NOISY = ("bitsandbytes",)


def quiet_third_party_logs() -> None:
    if os.environ.get("FT_VERBOSE", "") not in ("", "0"):
        return
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)


FT_LOGGERS = ("ft_core", "ft_data", "ft_models", "ft_train", "ft_stream")


class _Below(logging.Filter):
    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def show_ft_logs() -> None:
    """The libraries log instead of printing; the CLI shows their info lines on stdout and their
    warnings on stderr, each as one ``ft: ...`` line."""
    info = logging.StreamHandler(sys.stdout)
    info.addFilter(_Below(logging.WARNING))
    info.setFormatter(logging.Formatter("ft: %(message)s"))
    warn = logging.StreamHandler(sys.stderr)
    warn.setLevel(logging.WARNING)
    warn.setFormatter(logging.Formatter("ft: warning: %(message)s"))
    for name in FT_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.handlers[:] = [info, warn]
        logger.propagate = False
