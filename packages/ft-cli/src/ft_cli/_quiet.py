"""Keep third-party noise out of ordinary output.

Libraries below us log warnings that a user can do nothing about, through Python's last-resort
handler straight to stderr (bitsandbytes, on every command that imports peft: "Failed to load CPU
gemm_4bit_forward ... No module named 'kernels'" — `kernels` cannot work offline anyway), and
raise deprecation warnings meant for their callers' developers (peft and TRL reading
transformers 5.2x's renamed `is_gradient_checkpointing`). ``FT_VERBOSE=1`` keeps all of it.
"""

from __future__ import annotations

import logging
import os
import warnings

NOISY = ("bitsandbytes",)


def quiet_third_party_logs() -> None:
    if os.environ.get("FT_VERBOSE", "") not in ("", "0"):
        return
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
