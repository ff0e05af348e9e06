"""Version checks and transformers/TRL shims for ft-train (one place for all of them)."""

from ft_core import check_transformers

check_transformers("ft-train")
