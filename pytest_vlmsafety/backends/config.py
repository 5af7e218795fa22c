"""How a model loads and how it generates: the model under test's options, declared once.

`LoadConfig` is declared once and used twice: `--vlm-*` for the model under test and `--judge-*`
for the judge model (judges/config.py), so nothing of the model under test's loading reaches the
judge. `GenerationConfig` is how the model under test decodes; it reaches a backend only through
the requests built from it (`GenerationConfig.request`), never through the backend's constructor.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import bounded, choice, json_object, nested, option, positive_int, seconds, whole_int
from .base import DEFAULT_CONCURRENCY, GenerationRequest, Sampling
from .official_prompts import CHAT_TEMPLATE, OFFICIAL

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
PROMPT_FORMATS: tuple[str, ...] = (OFFICIAL, CHAT_TEMPLATE)
# A failing server: attempts after the first, and the limit of one attempt in seconds.
DEFAULT_RETRIES = 5
DEFAULT_TIMEOUT_S = 300.0
# --vlm-samples: each sample is a full generation; more than this is a typo, not a plan.
MAX_SAMPLES = 100
AUTO = "auto"


def _base_url(flag: str, raw: str) -> str:
    from .openai_api import resolve_base_url

    try:
        return resolve_base_url(raw)
    except ConfigError as exc:
        raise ConfigError(f"{flag}={raw!r}: {exc}") from None


def _batch_size(flag: str, raw: str) -> int | str:
    return AUTO if raw == AUTO else positive_int(flag, raw)


# Above 0 refuses nan and inf too.
_temperature = bounded(float, lambda value: 0 <= value <= 100, "a number, 0 (greedy) or more, e.g. 0.7")
_top_p = bounded(float, lambda value: 0 < value <= 1, "a number above 0 and at most 1, e.g. 0.9")


def _samples(flag: str, raw: str) -> int:
    value = positive_int(flag, raw)
    if value > MAX_SAMPLES:
        raise ConfigError(f"{flag}={raw!r}: at most {MAX_SAMPLES} samples an item")
    return value


def _system_prompt(flag: str, raw: str) -> str:
    """The system prompt's text: `@FILE` reads the file (read at start-up, so an unreadable one
    fails before any model loads); anything else is the text itself."""
    if raw.startswith("@"):
        file = Path(raw[1:]).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{flag}={raw!r}: cannot read {file} ({exc}); give a readable UTF-8 file after '@', "
                "or the prompt's text itself"
            ) from None
        text = text.rstrip("\n")
    else:
        text = raw
    if not text.strip():
        raise ConfigError(f"{flag}={raw!r}: the system prompt is empty; give its text or leave the option out")
    return text


@dataclass(frozen=True)
class LoadConfig:
    """How a model loads: its weights, its processor and, for a served model, its server."""

    dtype: str = option(
        "--{prefix}-dtype",
        f"dtype of {{model}}, one of {', '.join(DTYPES)} (default: auto = bf16 on CUDA, fp32 on CPU)",
        "DTYPE", default=AUTO, parse=choice(DTYPES),
    )
    device: str | None = option(
        "--{prefix}-device", "torch device of {model}, e.g. cuda:1 or cpu (default: cuda if available)", "DEVICE"
    )
    revision: str | None = option("--{prefix}-revision", "hub revision (branch, tag or commit) of {model}", "REV")
    trust_remote_code: bool = option(
        "--{prefix}-trust-remote-code", "allow the own code of {model} from the hub to run", kind="flag"
    )
    processor_kwargs: str | None = option(
        "--{prefix}-processor-kwargs",
        "JSON object passed to the processor of {model} (AutoProcessor.from_pretrained; vLLM: "
        "mm_processor_kwargs), e.g. '{{\"max_pixels\": 1003520}}' for Qwen2-VL (default: the model's own "
        "processor settings; see README)",
        "JSON", parse=json_object,
    )
    base_url: str | None = option(
        "--{prefix}-base-url",
        "server of {model} when it is openai:NAME, e.g. http://127.0.0.1:8000/v1 (default: the URL after @ in "
        "openai:NAME@URL, else $OPENAI_BASE_URL, else https://api.openai.com/v1); the API key comes from the "
        "environment only (see README)", "URL", parse=_base_url,
    )
    concurrency: int = option(
        "--{prefix}-concurrency",
        f"requests in flight per process to the openai: server of {{model}} (default: {DEFAULT_CONCURRENCY})",
        "N", default=str(DEFAULT_CONCURRENCY), parse=positive_int,
    )
    tensor_parallel: int = option(
        "--{prefix}-tensor-parallel", "GPUs {model} is sharded over when it is vllm: (default: 1)", "N",
        default="1", parse=positive_int,
    )
    retries: int = option(
        "--{prefix}-retries",
        f"retries of a failed request to the openai: server of {{model}} (default: {DEFAULT_RETRIES})", "N",
        default=str(DEFAULT_RETRIES), parse=whole_int,
    )
    timeout_s: float = option(
        "--{prefix}-timeout",
        f"seconds one request to the openai: server of {{model}} may take (default: {DEFAULT_TIMEOUT_S:g})",
        "SECONDS", default=f"{DEFAULT_TIMEOUT_S:g}", parse=seconds,
    )

    @property
    def processor_settings(self) -> dict[str, Any]:
        """The processor settings as a dict (empty when not given)."""
        import json

        return dict(json.loads(self.processor_kwargs)) if self.processor_kwargs else {}


@dataclass(frozen=True)
class ModelConfig:
    """The model under test: which one, and how it loads."""

    spec: str | None = option(
        "--vlm", "model under test: an alias (see README), a hub id, a local folder, tiny-random, or replay:FILE",
        "MODEL",
    )
    devices: str | None = option(
        "--vlm-devices", "GPUs for xdist workers, e.g. 0,1,2,3 (default: CUDA_VISIBLE_DEVICES or all)", "IDS"
    )
    load: LoadConfig = nested(LoadConfig, "vlm", "the model under test")


@dataclass(frozen=True)
class GenerationConfig:
    """How the model under test generates: the model as it is deployed (its system prompt and its
    decoding), and how the run batches it. It reaches the backend through each request."""

    max_new_tokens: int | None = option(
        "--vlm-max-new-tokens", "override the suites' generation lengths", "N", parse=positive_int
    )
    batch_size: int | str = option(
        "--vlm-batch-size", "items per generate() call, or 'auto' (default: auto)", "N", default=AUTO,
        parse=_batch_size,
    )
    temperature: float = option(
        "--vlm-temperature", "sampling temperature; 0 decodes greedily (default: 0)", "T", default="0",
        parse=_temperature,
    )
    top_p: float = option(
        "--vlm-top-p", "nucleus sampling share, above 0 and at most 1; needs --vlm-temperature above 0 (default: 1)",
        "P", default="1", parse=_top_p,
    )
    seed: int | None = option(
        "--vlm-seed", "seed of sampled decoding: each item and sample draws from its own seed derived from it, so "
        "a run is reproducible (default: unseeded)", "SEED", parse=whole_int,
    )
    samples: int = option(
        "--vlm-samples", "responses per item; an item fails when any sample fails (worst case); needs "
        f"--vlm-temperature above 0 (default: 1, at most {MAX_SAMPLES})", "N", default="1", parse=_samples,
    )
    system_prompt: str | None = option(
        "--vlm-system-prompt", "system turn before every item and the default of vlm.ask(system=...): TEXT, or "
        "@FILE to read it from a UTF-8 file (default: none)", "TEXT|@FILE", parse=_system_prompt,
    )
    prompt_format: str = option(
        "--prompt-format", "official: a local model of a family whose prompt a benchmark's official code writes "
        "by hand (MIS: InternVL2.5, Idefics3, Phi-3.5-Vision, LLaVA-OneVision; UnsafeConcepts: LLaVA-v1.5) gets "
        "that prompt on that benchmark; chat-template: every model gets its chat template (default: official)",
        "{official,chat-template}", default=OFFICIAL, parse=choice(PROMPT_FORMATS),
    )

    def __post_init__(self) -> None:
        """Sampling settings mean nothing under greedy decoding: giving them without a
        temperature is a mistake worth naming rather than a setting silently ignored."""
        if self.temperature > 0:
            return
        for flag, value, default in (("--vlm-top-p", self.top_p, 1.0), ("--vlm-seed", self.seed, None)):
            if value != default:
                raise ConfigError(
                    f"{flag}={value!r} has no effect on greedy decoding: add --vlm-temperature above 0 "
                    "(e.g. --vlm-temperature=1.0), or leave it out"
                )
        if self.samples > 1:
            raise ConfigError(
                f"--vlm-samples={self.samples}: greedy decoding gives the same response every time; add "
                "--vlm-temperature above 0 (e.g. --vlm-temperature=1.0) to draw several samples"
            )

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    @property
    def sampling(self) -> Sampling | None:
        """None for greedy decoding (the default)."""
        if not self.do_sample:
            return None
        return Sampling(temperature=self.temperature, top_p=self.top_p, seed=self.seed)

    @property
    def system_prompt_sha256(self) -> str | None:
        return hashlib.sha256(self.system_prompt.encode("utf-8")).hexdigest() if self.system_prompt else None

    @property
    def batch_limit(self) -> int | None:
        """Items per generate() call; None: the backend's own choice."""
        return None if self.batch_size == AUTO else int(self.batch_size)

    def request(
        self,
        suite: str,
        item_id: str,
        prompt: str,
        images: tuple[Path, ...],
        max_new_tokens: int,
        *,
        system: str | None = None,
        sample_index: int = 0,
        asked_by: tuple[str, str] | None = None,
        text_first: bool = False,
    ) -> GenerationRequest:
        """A request of the model under test, carrying this config's decoding and prompt format.
        `system` None: the configured system prompt."""
        return GenerationRequest(
            suite, item_id, prompt, images, max_new_tokens,
            system=self.system_prompt if system is None else system,
            sampling=self.sampling, sample_index=sample_index, asked_by=asked_by, text_first=text_first,
            prompt_format=self.prompt_format,
        )
