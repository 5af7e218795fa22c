"""How responses are judged: the judging options, declared once.

A benchmark's own judging options (HoliSafe's `--holisafe-judge-unreadable`, UnsafeConcepts'
`--unsafeconcepts-classifiers`) are not here: its registration declares them
(suites/registry.py), and its judges read them from there (judges/from_suites.py).

The judge model has its own loading config (`--judge-dtype`, `--judge-device`, `--judge-revision`,
...: `LoadConfig` declared once in backends/config.py): nothing of the model under test's loading,
processor settings, system prompt or prompt format reaches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backends.config import LoadConfig
from ..errors import ConfigError
from ..options import choice, nested, option, positive_int
from .base import LLM_JUDGE_NAME


def _judge_name(flag: str, raw: str) -> str:
    from . import judge_choices

    return str(choice(judge_choices())(flag, raw))


def _judge_model(flag: str, raw: str) -> str:
    from ..backends import parse_backend_spec

    parse_backend_spec(raw, option=flag)
    return raw


def _judge_prompts(flag: str, raw: Sequence[str]) -> tuple[str, ...]:
    """Read at start-up, so an unreadable prompt file fails before any model loads."""
    from .prompts import read_prompt_overrides

    read_prompt_overrides(raw)
    return tuple(raw)


def _refusal_phrases(flag: str, raw: str) -> tuple[str, ...]:
    """Read at start-up, so an unreadable file fails before any model loads."""
    from .refusal import read_refusal_phrases

    return read_refusal_phrases(Path(raw).expanduser())


@dataclass(frozen=True)
class JudgeConfig:
    """Which judge reads the responses, and how the LLM judge's model loads and is asked."""

    judge: str = option(
        "--safety-judge", "judge: auto (each suite's official judge), refusal, or a judge name", "NAME",
        default="auto", parse=_judge_name, parse_default=False,
    )
    model: str | None = option(
        "--judge-model", "model of --safety-judge=llm, in any --vlm form: openai:NAME[@URL], vllm:MODEL, a hub id, "
        "a folder...", "MODEL", parse=_judge_model,
    )
    load: LoadConfig = nested(LoadConfig, "judge", "the judge model (--judge-model)")
    prompts: tuple[str, ...] = option(
        "--judge-prompt", "your prompt for the LLM judge: SCHEME=FILE for one scheme (vscbench, holisafe, mis, "
        "choice, safe_unsafe, refusal) or FILE for all; repeatable (see docs/backends.md)", "[SCHEME=]FILE",
        kind="append", parse=_judge_prompts,
    )
    refusal_phrases: tuple[str, ...] | None = option(
        "--refusal-phrases", "file of phrases, one a line, that make the refusal judge read a response as a refusal "
        "wherever they occur: a deployment's fixed guardrail message or canned reply", "FILE",
        parse=_refusal_phrases,
    )
    max_new_tokens: int | None = option(
        "--judge-max-new-tokens", "reply length of every LLM-judge call, in place of each scheme's official one "
        "(VSCBench 4,096, HoliSafe 100, MIS 128, others 256): for a judge model whose context is shorter "
        "(default: the official lengths)", "N", parse=positive_int,
    )
    # Where judge replies are cached: the run's --vlm-cache (output/config.py), set by the run;
    # None: not cached.
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.judge == LLM_JUDGE_NAME and not self.model:
            raise ConfigError(
                "--safety-judge=llm needs --judge-model MODEL: the model that judges, e.g. "
                "--judge-model openai:gpt-4o-mini or --judge-model vllm:Qwen/Qwen2.5-VL-7B-Instruct"
            )
