"""Version checks for ft-serve (one place for all of them)."""

from ft_core import check_transformers

check_transformers("ft-serve")
