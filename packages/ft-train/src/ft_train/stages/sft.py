"""sft and pt: TRL's SFTTrainer on ft-data's finished rows (assistant-masked conversations, or
documents cut into blocks)."""

from __future__ import annotations

from ft_data import SFTCollator
from ft_data.collators import PACKED_TOKENS
from ft_train.stages import packed_attention, plain_head
from ft_train.stages._stage import Stage


def _config_class(user_args):
    from trl import SFTConfig

    return SFTConfig


def _defaults(config) -> dict:
    # ft-data hands over finished rows (tokenized, masked, maybe packed): TRL must not re-process
    # them, nor drop the position_ids that keep packed examples apart.
    return {"max_length": config.data.cutoff_len, "dataset_kwargs": {"skip_prepare_dataset": True},
            "remove_unused_columns": False}


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _trainer(*, model, args, tokenizer, data, eval_data, callbacks):
    from trl import SFTTrainer

    class PackedCountSFTTrainer(SFTTrainer):
        """TRL counts a batch without an attention mask as padding-free (one row): ``num_tokens`` of
        packed runs came out as the row width per step. Count the real tokens instead (TRL 1.16's
        ``_total_train_tokens``; drop this when TRL counts packed batches itself)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            packed = inputs.pop(PACKED_TOKENS, None)
            before = getattr(self, "_total_train_tokens", None)
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if packed is not None and before is not None and model.training:
                self._total_train_tokens = before + int(self.accelerator.gather_for_metrics(packed.reshape(1)).sum())
                self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
            return result

    # Packed rows carry restarting position_ids and no attention mask; our collator keeps them so.
    trainer = PackedCountSFTTrainer(model=model, args=args, train_dataset=data.dataset, eval_dataset=eval_data,
                                    processing_class=tokenizer, data_collator=SFTCollator(pad_id(tokenizer)),
                                    callbacks=callbacks)
    if on_cpu(args):
        plain_head.install(trainer.model)
        packed_attention.install(trainer.model)
    return trainer


def on_cpu(args) -> bool:
    import torch

    return bool(getattr(args, "use_cpu", False)) or not torch.cuda.is_available()


SFT = Stage("sft", "sft", _config_class, _trainer, _defaults, perplexity=True)
PT = Stage("pt", "pt", _config_class, _trainer, _defaults, perplexity=True)
