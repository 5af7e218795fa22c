"""The dtype policy of the local backends (Hugging Face and vLLM), in one place.

`auto` means bf16 on a CUDA device that supports it, fp16 on older CUDA devices and fp32 on the
CPU. vLLM's own `auto` would pick fp16 for fp32 checkpoints, so the vLLM backend resolves the name
here too and both backends run a model in the same precision.
"""

from __future__ import annotations


def resolve_dtype(requested: str, cuda: bool, bf16_supported: bool) -> str:
    """The dtype name (`float32`, `bfloat16` or `float16`) a local backend runs in. `requested` is
    `--vlm-dtype`; `cuda` whether the model runs on a CUDA device."""
    if requested != "auto":
        return requested
    if cuda:
        return "bfloat16" if bf16_supported else "float16"
    return "float32"
