"""Version checks and transformers-version shims for ft-stream (one place for all of them)."""

from ft_core import check_transformers

check_transformers("ft-stream")
