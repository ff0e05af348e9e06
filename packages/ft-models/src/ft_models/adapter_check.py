"""Does a saved adapter belong to the model it is put on? Shapes that differ are refused with
both sizes named (peft would print a long size-mismatch report); a base recorded under another
name is warned about, since an adapter on a same-shaped but different model loads silently and
answers nonsense."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ft_core import FtError

log = logging.getLogger("ft_models")
_PREFIX = "base_model.model."


def _lora_shapes(adapter_dir: Path) -> dict[str, tuple[int, int]]:
    """Module name → (in_features, out_features) as the adapter's LoRA A/B matrices imply."""
    from safetensors import safe_open

    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        return {}
    shapes: dict[str, list[int | None]] = {}
    with safe_open(str(path), "pt") as f:
        for key in f.keys():
            for part, index, dim in ((".lora_A.weight", 0, 1), (".lora_B.weight", 1, 0)):
                if key.endswith(part):
                    module = key[: -len(part)].removeprefix(_PREFIX)
                    shapes.setdefault(module, [None, None])[index] = f.get_slice(key).get_shape()[dim]
    return {m: (a, b) for m, (a, b) in shapes.items() if a is not None and b is not None}


def _same_model(recorded: str, given: str) -> bool:
    """Hub ids compare whole; folders by their last part (the same model may sit under another root)."""
    if not recorded or not given:
        return True
    if "/" in recorded and not Path(recorded).exists() and not recorded.startswith(("/", ".")):
        return recorded == given
    return Path(recorded).name == Path(given).name


def check_adapter_fits(model, adapter_dir: str | Path) -> None:
    """Raise an FtError if the adapter's layers do not fit ``model``; warn if it names another base."""
    adapter_dir = Path(adapter_dir)
    try:
        recorded = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    except (OSError, ValueError):
        raise FtError(f"{adapter_dir / 'adapter_config.json'} is not valid JSON; save the adapter again") from None
    given = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    trained_on = f" (it was trained on {recorded})" if recorded else ""
    for module, (n_in, n_out) in _lora_shapes(adapter_dir).items():
        try:
            layer = model.get_submodule(module)
        except AttributeError:
            raise FtError(f"adapter {adapter_dir} does not fit {given or type(model).__name__}: it has no layer "
                          f"{module}{trained_on}; load it on its base model") from None
        have = (getattr(layer, "in_features", n_in), getattr(layer, "out_features", n_out))
        if have != (n_in, n_out):
            raise FtError(f"adapter {adapter_dir} does not fit {given or type(model).__name__}: {module} is "
                          f"{have[0]}->{have[1]} there and {n_in}->{n_out} in the adapter{trained_on}; "
                          "load it on its base model")
    if not _same_model(recorded, given):
        log.warning("adapter %s was trained on %s, not %s; unless they are the same model its answers "
                    "will be wrong", adapter_dir, recorded, given)


def check_adapter_for(name: str, adapter_dir: str | Path) -> None:
    """``check_adapter_fits`` against model ``name`` before its weights load: on a skeleton built
    from its config on the meta device (no memory, no reading)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from ft_models.adapters import require_adapter
    from ft_models.sources import model_path

    adapter_dir = require_adapter(adapter_dir)
    path = model_path(name)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    skeleton.config._name_or_path = path
    check_adapter_fits(skeleton, adapter_dir)
