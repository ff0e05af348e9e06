"""kto: TRL's KTOTrainer on ft-data's unpaired examples (prompt ids, completion ids, desirable or not)."""

from __future__ import annotations

from ft_train.stages._stage import Stage

KTO_COLUMNS = {"prompt_input_ids": "prompt_ids", "completion_input_ids": "completion_ids"}


def _config_class(user_args):
    from trl import KTOConfig

    return KTOConfig


def _trainer(*, model, args, tokenizer, data, eval_data, callbacks):
    from trl import KTOTrainer

    class FinishedRowsKTOTrainer(KTOTrainer):
        # TRL 1.16 tokenizes every dataset itself; ft-data's rows are finished, only the names differ.
        # The KL term's mismatched completions are built as TRL builds them: rotated by one within
        # each batch (its sampling is sequential for that reason, so the rows are shuffled first).
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            dataset = dataset.rename_columns(KTO_COLUMNS).shuffle(seed=args.seed).flatten_indices()
            if not self.calculate_KL:
                return dataset
            return dataset.map(lambda b: {"KL_completion_ids": b["completion_ids"][-1:] + b["completion_ids"][:-1]},
                               batched=True, batch_size=args.per_device_train_batch_size)

    return FinishedRowsKTOTrainer(model=model, args=args, train_dataset=data.dataset, eval_dataset=eval_data,
                                  processing_class=tokenizer, callbacks=callbacks)


KTO = Stage("kto", "kto", _config_class, _trainer, lambda config: {"max_length": config.data.cutoff_len},
            plotted=("rewards/margins", "kl", "rewards/chosen", "rewards/rejected"))
