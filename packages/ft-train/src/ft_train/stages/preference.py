"""rm, dpo and orpo: preference pairs from ft-data (prompt ids, chosen and rejected answer ids).

- dpo: TRL's DPOTrainer and its loss variants (``loss_type``: sigmoid, ipo, hinge, robust, ...)
  against a reference model (the base with the adapter switched off, for LoRA), its forward
  passes padding-free (``padding_free``, on by default; see padding_free.py); ``loss_type:
  simpo`` or ``reference_free: true`` train without one, through ``PreferenceTrainer``.
- orpo: ``PreferenceTrainer`` (see preference_loss.py for why it is ours).
- rm: TRL's RewardTrainer on a model with a score head.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ft_data import PairwiseCollator
from ft_train.stages import packed_attention, padding_free, plain_head
from ft_train.stages._stage import Stage
from ft_train.stages.preference_loss import PreferenceConfig, PreferenceTrainer
from ft_train.stages.sft import on_cpu, pad_id
from ft_train.trainer_args import config_variant

PAIR_COLUMNS = {"prompt_input_ids": "prompt_ids", "chosen_input_ids": "chosen_ids", "rejected_input_ids": "rejected_ids"}
PLOTTED = ("rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected")
log = logging.getLogger("ft_train")


def _own_loss(user_args: dict) -> bool:
    return config_variant("dpo", user_args) == "reference-free"


def _dpo_config(user_args):
    from trl import DPOConfig

    return RefFreeDPOConfig if _own_loss(user_args) else DPOConfig


@dataclass
class RefFreeDPOConfig(PreferenceConfig):
    """``train:`` keys of a dpo run without a reference model (``loss_type`` simpo, or sigmoid, ipo,
    hinge with ``reference_free: true``)."""

    loss_type: str = field(default="sigmoid", metadata={"help": "simpo, sigmoid, ipo or hinge"})
    reference_free: bool = field(default=True, metadata={"help": "no reference model"})


def _pair_defaults(config) -> dict:
    return {"max_length": config.data.cutoff_len, "remove_unused_columns": False}


def _dpo_defaults(config) -> dict:
    defaults = _pair_defaults(config)
    if not _own_loss(config.train.trainer_args):
        defaults["padding_free"] = True  # ours (padding_free.py); TRL 1.16 has switched its own off
    return defaults


def _own_trainer(*, model, args, tokenizer, data, eval_data, callbacks):
    return PreferenceTrainer(model=model, args=args, train_dataset=data.dataset, eval_dataset=eval_data,
                             processing_class=tokenizer, data_collator=PairwiseCollator(pad_id(tokenizer)), callbacks=callbacks)


def _dpo_trainer(*, model, args, tokenizer, data, eval_data, callbacks):
    if isinstance(args, PreferenceConfig):
        return _own_trainer(model=model, args=args, tokenizer=tokenizer, data=data, eval_data=eval_data,
                            callbacks=callbacks)
    from trl import DPOTrainer

    from ft_models import recurrent_layer_types

    class FinishedRowsDPOTrainer(DPOTrainer):
        # TRL 1.16 tokenizes every non-vision dataset itself and has no switch for finished rows:
        # ft-data's pairs are already templated, tokenized and cut to the cutoff; only the names differ.
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset.rename_columns(PAIR_COLUMNS)

    packed, args.padding_free = args.padding_free, False  # TRL would only warn and switch it off
    trainer = FinishedRowsDPOTrainer(model=model, args=args, train_dataset=data.dataset, eval_dataset=eval_data,
                                  processing_class=tokenizer, callbacks=callbacks)
    args.padding_free = packed  # recorded as the user set it
    stateful = recurrent_layer_types(model.config)
    if packed and stateful:
        log.info("padding-free forwards off: this model's %s layers carry a state along the sequence, which "
                 "packed pieces would share", ", ".join(stateful))
    elif packed:
        padding_free.install(trainer.model, pad_id(tokenizer))
    if on_cpu(args):  # after padding_free: it packs first and unpacks last
        plain_head.install(trainer.model)
        packed_attention.install(trainer.model)
    return trainer


def _rm_config(user_args):
    from trl import RewardConfig

    return RewardConfig


def _rm_trainer(*, model, args, tokenizer, data, eval_data, callbacks):
    from trl import RewardTrainer

    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_id(tokenizer)
    return RewardTrainer(model=model, args=args, train_dataset=_whole_pairs(data.dataset),
                         eval_dataset=_whole_pairs(eval_data), processing_class=tokenizer, callbacks=callbacks)


def _whole_pairs(rows):
    """RewardTrainer takes finished rows as whole sequences: prompt + answer."""
    if rows is None:
        return None
    return rows.map(lambda r: {"chosen_ids": r["prompt_input_ids"] + r["chosen_input_ids"],
                               "rejected_ids": r["prompt_input_ids"] + r["rejected_input_ids"]},
                    remove_columns=list(PAIR_COLUMNS))


def _orpo_config(user_args):
    return PreferenceConfig


DPO = Stage("dpo", "dpo", _dpo_config, _dpo_trainer, _dpo_defaults, plotted=PLOTTED)
ORPO = Stage("orpo", "orpo", _orpo_config, _own_trainer, _pair_defaults, plotted=PLOTTED)
RM = Stage("rm", "rm", _rm_config, _rm_trainer, lambda config: {"max_length": config.data.cutoff_len}, head="score",
           plotted=("accuracy", "margin"))
