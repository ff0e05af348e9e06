"""Will a training step fit on the GPU without gradient checkpointing? An estimate from the
model's config, the batch and the adapter, so checkpointing (a third more compute per step) is
turned on only where memory needs it.

The parts come from two measurements (issue 10, ``benchmarks/gpu/memory_gpu.py``):

- what autograd keeps per token and layer, counted tensor by tensor on the CPU under bf16 autocast
  (``tests/test_memory_defaults.py`` counts it again on every run);
- the peak of a packed LoRA step of a Qwen2-0.5B-shaped model on an H200, at batch 2 to 16
  (4.61, 7.87, 14.55 and 27.92 GB, with PEFT's copies of the adapters' inputs that ft-models
  skips from 0.8.1): the peak grows by about 10% more per token than the CPU count (the GPU's
  attention kernels and the backward pass's transients), which ``GPU_EXTRA`` adds.

Example:
    >>> est = step_memory(layers=24, hidden=896, intermediate=4864, vocab=151936, kv_hidden=128,
    ...                   tokens=8 * 1024, full=False)
    >>> round(est.total / 1e9, 1), est.fits(16e9)
    (13.1, False)
"""

from __future__ import annotations

from dataclasses import dataclass

HEADROOM = 0.8  # the allocator's fragmentation, CUDA context, the evaluation pass
GPU_EXTRA = 1.10  # H200 peak slope over the CPU count of saved tensors (Qwen2-0.5B shape, batch 2-16)
# TRL's fused LM head (SFT, DPO, KTO, GRPO, RLOO under TRL 1.16) projects tiles of at most this
# many tokens by this many vocabulary entries, in bf16, and never holds the whole logits
HEAD_TILE_TOKENS, HEAD_TILE_VOCAB = 4096, 32768


@dataclass(frozen=True)
class StepMemory:
    """Bytes one optimizer step needs, by part, without gradient checkpointing."""

    weights: int
    optimizer: int  # the trained parameters' fp32 copy (adapters), gradients and Adam moments
    activations: int  # kept for the backward pass, every layer
    head: int  # the LM head's tile buffer, its saved input and that input's fp32 gradient

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.head

    def fits(self, gpu_bytes: float) -> bool:
        return self.total <= HEADROOM * gpu_bytes


def parameter_count(layers: int, hidden: int, intermediate: int, vocab: int, kv_hidden: int,
                    tied: bool = True) -> int:
    """Parameters of a Llama-style decoder: attention (q, o full; k, v at the KV width), a gated
    MLP, embeddings (and an untied head)."""
    attention = 2 * hidden * hidden + 2 * hidden * kv_hidden
    return layers * (attention + 3 * hidden * intermediate) + vocab * hidden * (1 if tied else 2)


def lora_parameter_count(layers: int, hidden: int, intermediate: int, kv_hidden: int, rank: int) -> int:
    """Parameters of a rank-``rank`` LoRA on every linear layer of each decoder layer
    (q, k, v, o, gate, up, down): ``rank * (in + out)`` each."""
    widths = [(hidden, hidden), (hidden, kv_hidden), (hidden, kv_hidden), (hidden, hidden),
              (hidden, intermediate), (hidden, intermediate), (intermediate, hidden)]
    return layers * rank * sum(i + o for i, o in widths)


def saved_bytes_per_token(hidden: int, intermediate: int, kv_hidden: int, *, lora: bool, lora_rank: int = 16,
                          lora_dropout: bool = False, lora_input_copies: bool = False) -> int:
    """What autograd keeps for one token in one decoder layer under bf16 autocast, as counted on
    the CPU: 20h + 8i + 4kv bytes when every weight trains (the MLP's four intermediate-wide bf16
    tensors, the norms' fp32 inputs, the projections' inputs, rotary q/k and attention's output).
    A LoRA adds its seven rank-wide outputs (14r) and, where each adapter keeps its own bf16 copy
    of its input (``lora_input_copies``: PEFT's fp32 cast of the input, which ft-models skips under
    autocast from 0.8.1 but DoRA keeps; or the output of LoRA dropout), 4h; where the adapters read
    their inputs as they are, 4h less than full tuning keeps (q, k and v share one input, and o's is
    the attention output its backward keeps anyway). LoRA dropout also adds CUDA's one-byte mask
    for each adapter's input (6h + i; the CPU's dropout keeps a mask in the input's dtype)."""
    h, i, kv = hidden, intermediate, kv_hidden
    saved = 20 * h + 8 * i + 4 * kv
    if lora:
        saved += 14 * lora_rank + (4 * h if lora_input_copies or lora_dropout else -4 * h)
        if lora_dropout:
            saved += 6 * h + i
    return saved


def step_memory(*, layers: int, hidden: int, intermediate: int, vocab: int, kv_hidden: int, tokens: int,
                full: bool, weight_bytes: float = 2, tied: bool = True, lora_rank: int = 16,
                lora_dropout: bool = False, lora_input_copies: bool = False) -> StepMemory:
    """The estimate for ``tokens`` tokens a step (batch x sequence length) in bf16; ``full`` trains
    every weight (otherwise a LoRA of ``lora_rank`` on every linear layer, ``lora_dropout`` saying
    whether it drops inputs, ``lora_input_copies`` whether its adapters copy their inputs: see
    ``saved_bytes_per_token``); ``weight_bytes`` is 0.5 or 1 for a 4- or 8-bit base."""
    params = parameter_count(layers, hidden, intermediate, vocab, kv_hidden, tied)
    trained = params if full else lora_parameter_count(layers, hidden, intermediate, kv_hidden, lora_rank)
    # full: fp32 gradients and Adam's two moments (12 bytes); an adapter also keeps fp32 weights (16)
    optimizer = trained * (12 if full else 16)
    per_token = saved_bytes_per_token(hidden, intermediate, kv_hidden, lora=not full, lora_rank=lora_rank,
                                      lora_dropout=lora_dropout, lora_input_copies=lora_input_copies)
    # autocast's bf16 copies of the fp32 adapter weights are kept once per step, whatever the tokens
    activations = int(tokens * layers * per_token * GPU_EXTRA) + (0 if full else 2 * trained)
    tile = min(tokens, HEAD_TILE_TOKENS) * min(vocab, HEAD_TILE_VOCAB) * 2
    head = tile + tokens * hidden * (2 + 4)  # the tile, the head's bf16 input and its fp32 gradient
    return StepMemory(weights=int(params * weight_bytes), optimizer=optimizer, activations=activations, head=head)


def from_config(config, *, tokens: int, full: bool, weight_bytes: float = 2, lora_rank: int = 16,
                lora_dropout: bool = False, lora_input_copies: bool = False) -> StepMemory:
    """The estimate for a transformers config (text config of multimodal models)."""
    config = getattr(config, "get_text_config", lambda: config)()
    hidden = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_hidden = (getattr(config, "num_key_value_heads", None) or heads) * head_dim
    return step_memory(layers=config.num_hidden_layers, hidden=hidden,
                       intermediate=getattr(config, "intermediate_size", None) or 4 * hidden,
                       vocab=config.vocab_size, kv_hidden=kv_hidden, tokens=tokens, full=full,
                       weight_bytes=weight_bytes, tied=bool(getattr(config, "tie_word_embeddings", True)),
                       lora_rank=lora_rank, lora_dropout=lora_dropout, lora_input_copies=lora_input_copies)


def checkpointing_choice(estimate: StepMemory, gpu_bytes: float) -> tuple[bool, str]:
    """(turn gradient checkpointing on?, the reason, for the log)."""
    need, have = estimate.total / 1e9, HEADROOM * gpu_bytes / 1e9
    if estimate.fits(gpu_bytes):
        return False, f"gradient checkpointing off: a step needs about {need:.1f} GB, {have:.0f} GB usable"
    return True, f"gradient checkpointing on: a step would need about {need:.1f} GB, {have:.0f} GB usable"
