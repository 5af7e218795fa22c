"""What the results file records about the judge: which model judged, pinned how, with which
prompts (by hash), and the reply reading the prompts imply.

Published numbers moved when the model behind an API name changed (`gpt-4o` has pointed at
several snapshots), so an API judge named without a dated snapshot is flagged (`unpinned`) and
warned about. Built from the run's options alone: the controller of an xdist run has no judge
instance, and the facts must not depend on which worker judged.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
import warnings
from typing import TYPE_CHECKING

from ..output.document import JudgeCallFacts, JudgeFacts, JudgePromptFacts
from .base import LLM_JUDGE_NAME
from .from_suites import provided

if TYPE_CHECKING:
    from .config import JudgeConfig

# OpenAI's dated snapshots end in -YYYY-MM-DD (gpt-4o-2024-08-06) or, for older models, -MMDD
# (gpt-4-0613, gpt-3.5-turbo-0125).
_DATED_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")
OPENAI_HOST = "api.openai.com"
# An option of HoliSafe's own, declared by its registration (suites/registry.py; a test keeps the
# two spellings one) and handed over with the registry's option values (from_suites.py).
HOLISAFE_UNREADABLE_FLAG = "--holisafe-judge-unreadable"


class UnpinnedJudgeWarning(UserWarning):
    """The LLM judge is an API model named without a dated snapshot."""


def is_dated_snapshot(model_name: str) -> bool:
    return bool(_DATED_SNAPSHOT.search(model_name.strip()))


def unpinned_reason(judge_model: str) -> str | None:
    """Why `--judge-model` is not pinned, or None. Only OpenAI's own API is checked: a local
    server's model name says nothing about snapshots, and its weights are the user's to pin."""
    from ..backends import parse_backend_spec

    spec = parse_backend_spec(judge_model, option="--judge-model")
    if not spec.backend.served or is_dated_snapshot(spec.target):
        return None
    from ..backends.openai_api import resolve_base_url

    host = urllib.parse.urlsplit(resolve_base_url(spec.base_url)).hostname or ""
    if host != OPENAI_HOST:
        return None
    return (
        f"--judge-model {judge_model}: {spec.target!r} is not a dated snapshot, and the model behind the name "
        f"changes over time (published judge numbers moved when it did); name a snapshot such as "
        f"{spec.target}-2024-08-06 to make the judgements reproducible"
    )


def warn_if_unpinned(judge_model: str) -> None:
    reason = unpinned_reason(judge_model)
    if reason:
        warnings.warn(reason, UnpinnedJudgeWarning, stacklevel=2)


def prompt_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def judge_facts(config: JudgeConfig) -> JudgeFacts | None:
    """`run.judge_facts` of the results: None unless the LLM judge can run (`--judge-model`).

    `model`: the spec as given; `kind`: its backend; `snapshot`: an API model's dated snapshot;
    `revision`: `--judge-revision` (a hub judge's branch, tag or commit; None = the default branch);
    `pinned`: False for an API model without a dated snapshot (see `unpinned_reason`);
    `prompts`: per scheme, where the template came from, its SHA-256 and whether it is the
    benchmark's official prompt (which switches the reply reading to the official one);
    `holisafe_unreadable`: what an unreadable HoliSafe reply does (`--holisafe-judge-unreadable`, an
    option of HoliSafe's registration, read from the registry's values);
    `calls`: per scheme, the judge call's settings as its benchmark's official judge makes it
    (token limit, temperature, system turn, content order; `JudgeScheme.call`).
    """
    if not config.model:
        return None
    from ..backends import parse_backend_spec
    from .prompts import read_prompt_overrides, templates_for

    spec = parse_backend_spec(config.model, option="--judge-model")
    templates = templates_for(read_prompt_overrides(config.prompts))
    unpinned = unpinned_reason(config.model)
    return JudgeFacts(
        judge=LLM_JUDGE_NAME,
        used=config.judge == LLM_JUDGE_NAME,
        model=spec.raw,
        kind=spec.kind,
        snapshot=spec.target if spec.backend.served and is_dated_snapshot(spec.target) else None,
        revision=config.load.revision,
        pinned=unpinned is None,
        prompts={
            scheme: JudgePromptFacts(
                source=template.source, sha256=prompt_sha256(template.text), official=template.official
            )
            for scheme, template in templates.items()
        },
        holisafe_unreadable=_text_or_none(provided().option_values().get(HOLISAFE_UNREADABLE_FLAG)),
        calls={scheme: call_facts(scheme, config.max_new_tokens) for scheme in templates},
    )


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def call_facts(scheme_name: str, max_new_tokens: int | None = None) -> JudgeCallFacts:
    """How the scheme's judge calls are made; `max_new_tokens` (`--judge-max-new-tokens`) replaces
    the scheme's official reply length when given."""
    from .schemes import scheme_named

    call = scheme_named(scheme_name).call
    return JudgeCallFacts(
        max_new_tokens=max_new_tokens if max_new_tokens is not None else call.max_new_tokens,
        temperature=call.temperature,
        system=call.system,
        content_order="text-first" if call.text_first else "images-first",
    )


__all__ = [
    "UnpinnedJudgeWarning",
    "is_dated_snapshot",
    "judge_facts",
    "prompt_sha256",
    "unpinned_reason",
    "warn_if_unpinned",
]
