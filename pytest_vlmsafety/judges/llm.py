"""`--safety-judge=llm`: a model judges each response, in its benchmark's official label scheme.

The judge model is any backend (`--judge-model`: openai:NAME[@URL], vllm:MODEL, a hub id, a
folder, tiny-random...). It sees what the benchmark's official judge sees and answers in the
benchmark's labels. Everything benchmark-specific (prompts, what the judge is shown, the reply's
JSON schema, the lenient and the official reading, the verdict mapping, the rule for an
unreadable reply) belongs to the item's judge scheme (judges/schemes.py: `scheme_for`); a
benchmark's scheme lives in its suite module. This module only plans, caches and batches the
judge calls. Where the backend supports it (openai: servers, vllm:), the answer is constrained
to the scheme's JSON schema; otherwise the JSON is read from the text, with a plain text
reading as the last resort.

Each scheme's prompt is replaceable with `--judge-prompt SCHEME=FILE`; the benchmark's official
prompt (`--judge-prompt SCHEME=official`, or a file with the same text) switches the reading to
the benchmark's own (`JudgeScheme.read_official`) and drops our JSON schema.

A judge call that fails (the server gave up on that one request) is treated like an unreadable
reply; a judge model that cannot be reached at all fails the batch with one clear error.

Judge replies are cached (`cache.Cache` judgements table) under `judgement_key`: the judge
model's fingerprint, the prompt template, the item fields and images the judge sees and the
response. The raw reply is stored, not the verdict, so a better reader needs no new judging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends import Backend, BackendSpec, GenerationRequest, load_backend, parse_backend_spec
from ..backends.base import Sampling
from ..cache import Cache, fingerprint_model, replay_fingerprint, sha256_file, sha256_json
from ..errors import ConfigError
from ..items import SafetyItem, Verdict
from .base import LLM_JUDGE_NAME, Judge
from .facts import warn_if_unpinned
from .prompts import PromptTemplate, read_prompt_overrides, templates_for
from .schemes import JudgeCall, JudgeScheme, scheme_for

if TYPE_CHECKING:
    from ..backends.config import LoadConfig
    from .config import JudgeConfig

JUDGE_NAME = LLM_JUDGE_NAME
# Bump when a scheme's schema or reading changes meaning: it is part of every judgement key.
SCHEME_VERSION = 1


def judgement_key(
    judge_model: str,
    template: str,
    fields: Mapping[str, str],
    image_hashes: Sequence[str],
    response: str,
    *,
    scheme: JudgeScheme,
    max_new_tokens: int,
    official: bool = False,
) -> str:
    """The cache key of one judgement: everything that decides the judge's reply. `judge_model`
    is the judge's fingerprint (`judge_fingerprint`), never a credential. The schema is the one
    the request is constrained to, else (an official prompt asking for free text) the scheme's."""
    schema = scheme.request_schema(official=official)
    return sha256_json({
        "judge_model": judge_model,
        "template": template,
        "fields": dict(fields),
        "images": list(image_hashes),
        "response": response,
        "scheme": scheme.name,
        "scheme_version": SCHEME_VERSION,
        "schema": dict(schema) if schema is not None else scheme.schema,
        "max_new_tokens": max_new_tokens,
        # The official call's temperature, system turn and content order (absent when they are
        # the defaults, so keys of schemes without official settings stay valid).
        **({"call": scheme.call.key_fields()} if scheme.call != JudgeCall() else {}),
        # The raw reply is stored, so only what changes the reply belongs here; `official`
        # changes the request (no JSON schema), hence the reply.
        **({"official": True} if official else {}),
    })


# --- the judge --------------------------------------------------------------------------------


class JudgementStore:
    """Raw judge replies in the cache's judgements table."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        values = self.cache.get_judgements(keys)
        return [v.get("reply") if isinstance(v, dict) and isinstance(v.get("reply"), str) else None for v in values]

    def put_many(self, replies: Mapping[str, str]) -> None:
        if replies:
            self.cache.put_judgements({key: {"reply": reply} for key, reply in replies.items()})


@dataclass
class _Plan:
    """One judgement to make: the rendered prompt, the images and (with a cache) its key."""

    scheme: JudgeScheme
    prompt: str
    images: tuple[Path, ...]
    official: bool = False
    key: str | None = None
    reply: str | None = None
    error: str | None = None


@dataclass
class LlmJudge(Judge):
    """The LLM judge. `load_backend` and `fingerprint` are called on first need: a fully cached
    run never loads the judge model."""

    spec: BackendSpec
    load: Callable[[], Backend]
    fingerprint: Callable[[], str]
    templates: Mapping[str, PromptTemplate]
    store: JudgementStore | None = None
    # None: each scheme's official token limit (`JudgeScheme.call`); a number overrides them all.
    max_new_tokens: int | None = None
    # The run's judging config, with which each scheme configures itself (`JudgeScheme.configured`;
    # HoliSafe's reads its suite's `--holisafe-judge-unreadable`); None: every scheme as built.
    config: JudgeConfig | None = None
    _backend: Backend | None = field(default=None, init=False, repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False)
    _schemes: dict[str, JudgeScheme] = field(default_factory=dict, init=False, repr=False)

    name = JUDGE_NAME

    @classmethod
    def from_options(cls, config: JudgeConfig, base_dir: Path | None = None) -> LlmJudge:
        return build_llm_judge(config, base_dir)

    def describe(self) -> dict[str, Any]:
        """For the results file: which model judged, with which prompts."""
        return {
            "judge": self.name,
            "model": self.spec.raw,
            "prompts": {scheme: template.source for scheme, template in self.templates.items()},
        }

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self.load()
        return self._backend

    def judge(self, items: Sequence[SafetyItem], responses: Sequence[str]) -> list[Verdict]:
        if len(items) != len(responses):
            raise ValueError(f"{len(items)} items but {len(responses)} responses")
        plans = [self._plan(item, response) for item, response in zip(items, responses, strict=True)]
        if self.store is not None:
            for plan, reply in zip(plans, self.store.get_many([p.key or "" for p in plans]), strict=True):
                plan.reply = reply
        missing = [i for i, plan in enumerate(plans) if plan.reply is None]
        if missing:
            self._ask(items, plans, missing)
        return [
            plan.scheme.verdict_for_reply(item, response, plan.reply, plan.error, official=plan.official)
            for item, response, plan in zip(items, responses, plans, strict=True)
        ]

    def scheme(self, item: SafetyItem) -> JudgeScheme:
        """The item's scheme, configured by the run's judging config."""
        scheme = scheme_for(item)
        if scheme.name not in self._schemes:
            self._schemes[scheme.name] = scheme.configured(self.config) if self.config is not None else scheme
        return self._schemes[scheme.name]

    def template(self, scheme: JudgeScheme) -> PromptTemplate:
        if scheme.name not in self.templates:
            raise ConfigError(
                f"judge scheme {scheme.name!r} was registered after the LLM judge was built; "
                "register it at import time of a conftest.py (see 'A scheme of your own' in docs/backends.md)"
            )
        return self.templates[scheme.name]

    def _plan(self, item: SafetyItem, response: str) -> _Plan:
        scheme = self.scheme(item)
        fields = scheme.fields(item)
        template = self.template(scheme)
        images = scheme.images(item)
        shown = scheme.shown_response(item, response)
        plan = _Plan(scheme, template.render({**fields, "response": shown}), images, official=template.official)
        if self.store is not None:
            plan.key = judgement_key(
                self._model_fingerprint(),
                template.text,
                fields,
                [sha256_file(path) for path in images],
                shown,
                scheme=scheme,
                max_new_tokens=self.tokens_for(scheme),
                official=template.official,
            )
        return plan

    def tokens_for(self, scheme: JudgeScheme) -> int:
        return self.max_new_tokens if self.max_new_tokens is not None else scheme.call.max_new_tokens

    def request(self, item: SafetyItem, plan: _Plan) -> GenerationRequest:
        """The judge call of one plan, made as the scheme's official judge makes it (`JudgeCall`):
        its token limit, temperature (sampled without a seed, as the official API call is), system
        turn and content order."""
        call = plan.scheme.call
        return GenerationRequest(
            item.suite, item.id, plan.prompt, plan.images, self.tokens_for(plan.scheme),
            system=call.system,
            sampling=Sampling(temperature=call.temperature) if call.temperature > 0 else None,
            text_first=call.text_first,
        )

    def _model_fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.fingerprint()
        return self._fingerprint

    def _ask(self, items: Sequence[SafetyItem], plans: list[_Plan], indices: list[int]) -> None:
        """Generate the missing replies, one backend call per scheme (one JSON schema each)."""
        backend = self.backend()
        structured = getattr(backend, "generate_structured", None)
        by_scheme: dict[tuple[str, bool], list[int]] = {}
        for index in indices:
            by_scheme.setdefault((plans[index].scheme.name, plans[index].official), []).append(index)
        for (_, official), group in sorted(by_scheme.items()):
            requests = [self.request(items[i], plans[i]) for i in group]
            schema = plans[group[0]].scheme.request_schema(official=official)
            if structured is not None and schema is not None:
                generations = structured(requests, schema)
            else:
                generations = backend.generate(requests)
            fresh: dict[str, str] = {}
            for index, generation in zip(group, generations, strict=True):
                plans[index].reply, plans[index].error = generation.text, generation.error
                key = plans[index].key
                if generation.text is not None and key:
                    fresh[key] = generation.text
            if self.store is not None:
                self.store.put_many(fresh)


def judge_with_second_opinion(
    judge: Judge,
    items: Sequence[SafetyItem],
    responses: Sequence[str],
    second_judge_for: Callable[[SafetyItem], str],
    config: JudgeConfig | None = None,
    base_dir: Path | None = None,
) -> list[Verdict]:
    """`judge`'s verdicts, each carrying the label of a second judge (by registry name, per
    item: the suite's rule judge) for the agreement report (`agreement.with_second_opinion`).
    The second opinion is optional: if that judge fails, the verdicts go without it."""
    from . import get_judge
    from .agreement import with_second_opinion

    verdicts = judge.judge(items, responses)
    by_second: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_second.setdefault(second_judge_for(item), []).append(index)
    for name, indices in sorted(by_second.items()):
        if name == judge.name:
            continue
        try:
            second_judge = get_judge(name, config, base_dir)
            seconds = second_judge.judge([items[i] for i in indices], [responses[i] for i in indices])
        except Exception:  # noqa: BLE001 - a missing second opinion costs only the agreement figure
            continue
        for index, second in zip(indices, seconds, strict=True):
            verdicts[index] = with_second_opinion(verdicts[index], second)
    return verdicts


# --- building it from the run's options -------------------------------------------------------

_judge_backends: dict[tuple[BackendSpec, Any], Backend] = {}


def load_judge_backend(spec: BackendSpec, load: LoadConfig) -> Backend:
    """The judge model, loaded once per process with its own loading config (`--judge-*`), never
    the model under test's. A server judge has its own base URL (the spec's @URL, else
    `--judge-base-url`, else $OPENAI_BASE_URL) and may have its own key ($VLMSAFETY_JUDGE_API_KEY).
    A hub id or folder holding a text-only causal LM (Llama Guard, WildGuard, an Instruct model)
    loads with `AutoModelForCausalLM` (backends/hf_text.py). Any other spec shares `load_backend`'s
    instances, so a judge that is also the model under test, loaded the same way, is loaded once."""
    if spec.backend.text_judge:
        from ..backends.hf_text import TextCausalLMBackend, is_text_only_model

        text_key = (spec, load)
        if text_key in _judge_backends:
            return _judge_backends[text_key]
        if is_text_only_model(spec.target, revision=load.revision, trust_remote_code=load.trust_remote_code):
            _judge_backends[text_key] = TextCausalLMBackend(
                spec.target,
                spec=spec.raw,
                revision=load.revision,
                dtype=load.dtype,
                device=load.device,
                trust_remote_code=load.trust_remote_code,
            )
            return _judge_backends[text_key]
    if not spec.backend.served:
        return load_backend(spec, load)
    from ..backends.openai_api import JUDGE_API_KEY_VARIABLES, OpenAIBackend, RetryPolicy, resolve_base_url

    key = (spec, load)
    if key not in _judge_backends:
        _judge_backends[key] = OpenAIBackend(
            spec.target,
            spec=spec.raw,
            base_url=resolve_base_url(spec.base_url or load.base_url),
            concurrency=load.concurrency,
            policy=RetryPolicy.from_options(load.retries, load.timeout_s),
            api_key_variables=JUDGE_API_KEY_VARIABLES,
            option="--judge-model",
        )
    return _judge_backends[key]


def judge_fingerprint(spec: BackendSpec, load: LoadConfig, cache: Cache) -> str:
    """What identifies the judge model's replies: a server's model name and URL, or the local
    weights (hub revision or file hashes) with the dtype."""
    if spec.backend.served:
        from ..backends.openai_api import resolve_base_url, server_fingerprint

        return server_fingerprint(spec.target, resolve_base_url(spec.base_url or load.base_url))
    target = spec.target
    if spec.is_noise:
        from ..backends.tiny import build_tiny_model

        target = str(build_tiny_model())
    model = (
        replay_fingerprint(cache, Path(target)) if spec.backend.replays
        else fingerprint_model(cache, target, load.revision)
    )
    return f"{spec.kind}|{model.value}|dtype={load.dtype}"


def build_llm_judge(config: JudgeConfig, base_dir: Path | None = None) -> LlmJudge:
    """The LLM judge of a run: `--judge-model` loaded with `--judge-*`, `--judge-prompt`, and the
    cache in `--vlm-cache` (relative to `base_dir`, the invocation directory; the working directory
    when None)."""
    if not config.model:
        raise ConfigError("--safety-judge=llm needs --judge-model MODEL (see docs/backends.md)")
    spec = parse_backend_spec(config.model, option="--judge-model")
    warn_if_unpinned(config.model)
    templates = templates_for(read_prompt_overrides(config.prompts))
    cache = None
    if config.cache_dir is not None:
        folder = config.cache_dir if base_dir is None else Path(base_dir) / config.cache_dir
        cache = Cache(folder)
    return LlmJudge(
        spec=spec,
        load=lambda: load_judge_backend(spec, config.load),
        fingerprint=(lambda: judge_fingerprint(spec, config.load, cache)) if cache else (lambda: spec.raw),
        templates=templates,
        store=JudgementStore(cache) if cache else None,
        max_new_tokens=config.max_new_tokens,
        config=config,
    )


__all__ = [
    "JUDGE_NAME",
    "JudgementStore",
    "LlmJudge",
    "build_llm_judge",
    "judge_fingerprint",
    "judge_with_second_opinion",
    "judgement_key",
    "load_judge_backend",
]
