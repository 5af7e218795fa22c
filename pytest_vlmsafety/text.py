"""Untrusted text made safe to show: suite data and model responses are never trusted.

A prompt, an item id, a category or a response can hold terminal escape sequences (ANSI colours,
clear screen, OSC window titles), line breaks that forge a line of our own output, or Unicode bidi
controls that reverse the text around them. `printable` turns every such character into a visible
escape (`\\x1b`, `\\n`, `\\u202e`), so what reaches a terminal, a JUnit XML file or a test id is
plain, one-line text. `node_id_part` also keeps characters out of test ids that pytest-html would
read as markup.
"""

from __future__ import annotations

import unicodedata

# Unicode bidi controls: embeddings, overrides, isolates and marks. Shown as escapes in one-line
# text; the HTML report keeps them but isolates every untrusted string (<bdi>).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Characters pytest-html (and any HTML view of a test id) would read as markup. Test ids are shown
# unescaped by some reporters, so an id never contains them.
MARKUP_CHARACTERS = frozenset("<>&\"'`")


def _is_unsafe(char: str) -> bool:
    # Cc: C0 and C1 controls and DEL (ESC starts every terminal sequence; \n and \r forge lines);
    # Cf: format characters (bidi controls, zero-width joiners used to hide text); line and paragraph
    # separators (Zl, Zp) end lines in some terminals and editors.
    return char in BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object) -> str:
    """`text` as one line of plain text: control, format and bidi characters become visible
    escapes. Cheap on ordinary text (one pass, no allocation when nothing needs escaping)."""
    value = text if isinstance(text, str) else str(text)
    if value.isascii() and value.isprintable():
        return value
    if not any(_is_unsafe(char) for char in value):
        return value
    return "".join(_escape(char) if _is_unsafe(char) else char for char in value)


def printable_lines(text: object) -> str:
    """Like `printable`, but line breaks of a multi-line message stay line breaks; each continuation
    line is indented so that untrusted text can never start a line of the output of its own."""
    value = text if isinstance(text, str) else str(text)
    return "\n    ".join(printable(line) for line in value.split("\n"))


def node_id_part(text: str) -> str:
    """A piece of a pytest node id (suite, category or item id): printable, without `::` (the
    node id separator) and without markup characters, which become `%XX` like in a URL."""
    cleaned = printable(text).replace("::", ":_:")
    if any(char in MARKUP_CHARACTERS for char in cleaned):
        cleaned = "".join(f"%{ord(char):02X}" if char in MARKUP_CHARACTERS else char for char in cleaned)
    return cleaned or "_"
