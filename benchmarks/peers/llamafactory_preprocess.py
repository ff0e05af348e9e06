"""Run LLaMA-Factory 0.9.5's own SFT preprocessing (align, template, tokenize, neat packing) on a
ShareGPT file and print the seconds it took as JSON. Runs inside the peer venv (see setup_llamafactory.sh).

    python llamafactory_preprocess.py DATA.jsonl MODEL_DIR --cutoff 1024 --num-proc 2
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("model")
    parser.add_argument("--cutoff", type=int, default=1024)
    parser.add_argument("--num-proc", type=int, default=None)
    parser.add_argument("--template", default="chatml")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lf-bench-"))
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-cache")  # no reuse of an earlier Arrow conversion
    (work / "dataset_info.json").write_text(json.dumps(
        {"bench": {"file_name": str(Path(args.data).resolve()), "formatting": "sharegpt",
                   # the system prompt 30% of the chats carry: LLaMA-Factory reads it only when named
                   "columns": {"messages": "conversations", "system": "system"}}}))

    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model_args = ModelArguments(model_name_or_path=args.model)
    data_args = DataArguments(template=args.template, dataset="bench", dataset_dir=str(work), cutoff_len=args.cutoff,
                              preprocessing_num_workers=args.num_proc, overwrite_cache=True, neat_packing=True)
    training_args = Seq2SeqTrainingArguments(output_dir=str(work / "out"), do_train=True, report_to="none")
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    start = time.perf_counter()
    module = get_dataset(template, model_args, data_args, training_args, "sft", tokenizer)
    seconds = time.perf_counter() - start
    rows = module["train_dataset"]
    tokens = sum(len(ids) for ids in rows["input_ids"])
    trained = sum(sum(label != -100 for label in labels) for labels in rows["labels"])
    print(json.dumps({"seconds": seconds, "rows": len(rows), "tokens": tokens, "trained_tokens": trained}))


if __name__ == "__main__":
    main()
