"""Short names for common VLMs (documented in the README's model table)."""

from __future__ import annotations

MODEL_ALIASES: dict[str, str] = {
    "qwen2-vl": "Qwen/Qwen2-VL-7B-Instruct",
    "qwen2-vl-2b": "Qwen/Qwen2-VL-2B-Instruct",
    "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
    "qwen2.5-vl-3b": "Qwen/Qwen2.5-VL-3B-Instruct",
    "llava-1.5-7b": "llava-hf/llava-1.5-7b-hf",
    "llava-next-7b": "llava-hf/llava-v1.6-mistral-7b-hf",
    "idefics3-8b": "HuggingFaceM4/Idefics3-8B-Llama3",
    "smolvlm": "HuggingFaceTB/SmolVLM-Instruct",
    "gemma-3-4b": "google/gemma-3-4b-it",
}
