"""ft-stream's layer-by-layer forward of the embedded SmolLM2 against the plain in-memory forward.

Every layer streams (no budget: nothing resident but embeddings and head), warm page cache; the
ratio is the cost of streaming a small model's prefill. test_stream_decode.py holds the issue's
1.1B benchmark against the peers.
"""

import pytest
import torch

pytest.importorskip("ft_stream")


@pytest.fixture(scope="module")
def prompt_ids():
    return torch.randint(0, 49152, (1, 100), generator=torch.Generator().manual_seed(0))


def test_stream_prefill_100_tokens(compare, prompt_ids):
    from transformers import AutoModelForCausalLM

    from ft_models import model_path
    from ft_stream import LayerwiseModel

    folder = model_path("smollm2-135m-instruct")
    plain = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    streamed = LayerwiseModel.from_source(folder, dtype=torch.float32)

    def baseline():
        with torch.inference_mode():
            return plain(input_ids=prompt_ids, use_cache=False).logits

    compare(lambda: streamed.forward(prompt_ids), baseline, baseline_name="in-memory transformers forward")
