"""Datasets in, token tensors out.

Example:
    >>> from ft_data import load_conversations
    >>> conversations = load_conversations("examples/data/identity_train.jsonl")  # doctest: +SKIP
"""

from ft_data import _compat  # noqa: F401  (version guard runs first)
from ft_data.collators import KTOCollator, PairwiseCollator, SFTCollator
from ft_data.dataset import TokenizedData, build_dataset
from ft_data.loading import Loaded, load_conversations, load_records, read_rows
from ft_data.masking import tokenize_conversation
from ft_data.mixing import mix, train_eval_split
from ft_data.packing import pack_dataset, pack_examples, plan_rows, varlen_kwargs
from ft_data.registry import DatasetSpec, load_registry, load_spec
from ft_data.templates import NAMED_TEMPLATES, ChatFormat

__all__ = [
    "DatasetSpec",
    "load_registry",
    "load_spec",
    "mix",
    "train_eval_split",
    "KTOCollator",
    "PairwiseCollator",
    "SFTCollator",
    "pack_dataset",
    "pack_examples",
    "varlen_kwargs",
    "plan_rows",
    "NAMED_TEMPLATES",
    "ChatFormat",
    "TokenizedData",
    "build_dataset",
    "Loaded",
    "load_conversations",
    "load_records",
    "read_rows",
    "tokenize_conversation",
]
