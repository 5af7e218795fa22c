"""The LLM judge's prompts: each scheme's own (judges/schemes.py; ours are the text files
here), and `--judge-prompt` overrides.

A template is plain text with placeholders in braces, filled from the item and the response:
  {query}     what the model was asked: the item's prompt; for VSCBench text-centric items the
              original text query (`prompt_origin`), which the official judge is always shown;
  {response}  the model's response (required in every template);
  {expected}  "safe" or "unsafe": the item's expected behaviour (HoliSafe's judge is told it);
  {options}   the options of a multiple-choice item ("A: ...\\nB: ..."), else empty;
  {category}  the item's category.
Other braces are left as they are, so a template can show a JSON example; a brace pair holding
a bare lower-case word that is not a placeholder (`{question}`) is refused, since it is almost
certainly a placeholder meant for another tool.

Which images the judge sees is part of the scheme, not of the template: HoliSafe's judge sees
the item's image and MIS's judge both images, as their official judges do; the others read
text only.

Official prompts. A scheme's `official_prompt` (for the built-in ones `official/<scheme>.txt`)
holds the benchmark's own judge prompt (VSCBench's `gpt_eval`, HoliSafe's judge prompt as
copied in lmms-eval, MIS's `gpt_eval.py`), word for word, with its placeholders renamed to ours
({question}/{resp} -> {query}/{response}, {safety_label} -> {expected}). A template is
*official* when it is one of these: chosen with `--judge-prompt SCHEME=official`, or a file
whose text equals it (whitespace aside). With an official template the judge reads the reply
exactly as the official code does (the scheme's `read_official`); with any other it reads it
leniently. Deciding by the text, not by a flag of
its own, keeps a user from pairing an edited prompt with the official reading by mistake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError

PLACEHOLDERS: tuple[str, ...] = ("query", "response", "expected", "options", "category")
ALL_SCHEMES = "*"
OFFICIAL = "official"

_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_WORD_IN_BRACES = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class PromptTemplate:
    """A template's text and where it came from (a file path, or `builtin:<scheme>`)."""

    text: str
    source: str
    official: bool = False

    def render(self, values: Mapping[str, str]) -> str:
        """One pass over the template: a response that itself contains "{query}" stays as it is."""
        return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), self.text)


def check_template(text: str, where: str) -> None:
    if "{response}" not in text:
        raise ConfigError(
            f"{where}: the judge prompt has no {{response}} placeholder; the judge would not see the response"
        )
    unknown = sorted({name for name in _WORD_IN_BRACES.findall(text) if name not in PLACEHOLDERS})
    if unknown:
        raise ConfigError(
            f"{where}: unknown placeholder(s) {', '.join('{' + name + '}' for name in unknown)}; accepted: "
            f"{', '.join('{' + name + '}' for name in PLACEHOLDERS)}"
        )


def scheme_names() -> tuple[str, ...]:
    """The names `--judge-prompt SCHEME=...` accepts."""
    from ..schemes import scheme_names as registered

    return registered()


def official_scheme_names() -> tuple[str, ...]:
    """The schemes whose benchmark publishes its judge prompt."""
    from ..schemes import all_schemes

    return tuple(name for name, scheme in all_schemes().items() if scheme.has_official_prompt)


def builtin_template(scheme: str) -> PromptTemplate:
    from ..schemes import scheme_named

    return PromptTemplate(scheme_named(scheme).builtin_prompt(), f"builtin:{scheme}")


def official_template(scheme: str) -> PromptTemplate:
    """The benchmark's own judge prompt for `scheme` (see the module docstring)."""
    from ..schemes import scheme_named

    text = scheme_named(scheme).official_prompt()
    if text is None:
        raise ConfigError(
            f"--judge-prompt {scheme}={OFFICIAL}: scheme {scheme!r} has no official judge prompt; "
            f"accepted: {', '.join(official_scheme_names())}"
        )
    return PromptTemplate(text, f"{OFFICIAL}:{scheme}", official=True)


def _same_text(first: str, second: str) -> bool:
    return first.split() == second.split()


def is_official_text(scheme: str, text: str) -> bool:
    """Whether `text` is the official judge prompt of `scheme`, whitespace aside."""
    return scheme in official_scheme_names() and _same_text(text, official_template(scheme).text)


def read_prompt_overrides(values: Sequence[str]) -> dict[str, PromptTemplate]:
    """`--judge-prompt` values (`SCHEME=FILE`, `SCHEME=official` or `FILE` for every scheme) as
    scheme -> template; `*` holds the one for every scheme. A later value for the same scheme
    wins. A file equal to a scheme's official prompt is marked official for that scheme."""
    overrides: dict[str, PromptTemplate] = {}
    schemes = scheme_names()
    for value in values:
        scheme, _, path_text = value.partition("=")
        if scheme in schemes and path_text == OFFICIAL:
            overrides[scheme] = official_template(scheme)
            continue
        if scheme not in schemes:
            scheme, path_text = ALL_SCHEMES, value
        path = Path(path_text).expanduser()
        where = f"--judge-prompt {value}"
        if not path.is_file():
            raise ConfigError(
                f"{where}: no such file {path}; give FILE or SCHEME=FILE with SCHEME one of {', '.join(schemes)}"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read {path} as UTF-8 text ({exc})") from None
        check_template(text, where)
        overrides[scheme] = PromptTemplate(text, str(path), official=is_official_text(scheme, text))
    return overrides


def templates_for(overrides: Mapping[str, PromptTemplate]) -> dict[str, PromptTemplate]:
    """The template of every scheme: the user's for that scheme, else the user's for all
    schemes, else ours."""
    return {
        scheme: overrides.get(scheme) or overrides.get(ALL_SCHEMES) or builtin_template(scheme)
        for scheme in scheme_names()
    }


__all__ = [
    "PLACEHOLDERS",
    "PromptTemplate",
    "builtin_template",
    "check_template",
    "is_official_text",
    "official_template",
    "official_scheme_names",
    "read_prompt_overrides",
    "scheme_names",
    "templates_for",
]
