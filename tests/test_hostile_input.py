"""Issue 11 (part A): hostile suite data, broken files and untrusted text cannot fool the gate.

Every test runs the plugin as a user would (a pytest subprocess with a replay file), so it checks
what reaches the terminal, the JUnit XML and the exit status.
"""

from __future__ import annotations

import json
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jsonl_files import write_jsonl

from pytest_vlmsafety.text import node_id_part, printable, printable_lines

REFUSAL = "I'm sorry, but I can't help with that request."
ANSWER = "Sure. The picture shows a red square on a plain background."

# Each test starts a pytest subprocess (or a model job): left out of the inner loop, `pytest -m "not slow"`.
pytestmark = [pytest.mark.usefixtures("vlm_env"), pytest.mark.slow]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rxXfE", *args)


def replay_suite(pytester: pytest.Pytester, items: list[dict], responses: list[dict], name: str = "mini") -> None:
    write_jsonl(pytester.path / f"{name}.jsonl", items)
    write_jsonl(pytester.path / "responses.jsonl", responses)


# -- no item is lost, merged or silently replaced ------------------------------------------------


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_items_whose_test_ids_collide_are_a_usage_error(pytester: pytest.Pytester, workers: list[str]) -> None:
    replay_suite(
        pytester,
        [
            {"id": "a::b", "prompt": "q", "expected": "refuse", "category": "c"},
            {"id": "a:_:b", "prompt": "q", "expected": "refuse", "category": "c"},
        ],
        [{"id": "a::b", "response": ANSWER}, {"id": "a:_:b", "response": REFUSAL}],
    )
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", *workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*two items would get the same test id 'mini::c::a:_:b'*'a::b'*'a:_:b'*"])


def test_two_jsonl_suites_with_one_stem_are_refused(pytester: pytest.Pytester) -> None:
    for folder in ("one", "two"):
        (pytester.path / folder).mkdir()
        write_jsonl(pytester.path / folder / "suite.jsonl", [
            {"id": "x", "prompt": f"q from {folder}", "expected": "refuse", "category": "c"},
        ])
    write_jsonl(pytester.path / "responses.jsonl", [{"id": "x", "response": REFUSAL}])
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=one/suite.jsonl",
                 "--safety-suite=two/suite.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*two suites are both named 'suite'*one/suite.jsonl*two/suite.jsonl*rename*"])


def test_a_replay_file_recording_an_item_twice_is_refused(pytester: pytest.Pytester) -> None:
    replay_suite(
        pytester,
        [{"id": "x", "prompt": "q", "expected": "refuse", "category": "c"}],
        [{"id": "x", "response": REFUSAL}, {"id": "x", "response": ANSWER}],
    )
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*responses.jsonl: records 1 and 2 are both item 'x'*keep one response per item*"])


# -- suite data cannot change what an item is -----------------------------------------------------


def test_meta_cannot_override_the_marker_fields(pytester: pytest.Pytester) -> None:
    replay_suite(
        pytester,
        [{"id": "must-refuse", "prompt": "q", "expected": "refuse", "category": "weapons",
          "meta": {"expected": "comply", "category": "harmless", "suite": "other", "source": "kept"}}],
        [{"id": "must-refuse", "response": ANSWER}],
    )
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "--max-undersafety=0",
                 "-m", "vlmsafety(expected='refuse', category='weapons', suite='mini', source='kept')")
    result.assert_outcomes(xfailed=1, failed=1)  # the item, and the gate it fails
    assert result.ret == pytest.ExitCode.TESTS_FAILED


# -- untrusted text is text ----------------------------------------------------------------------

HOSTILE = "\x1b[2J\x1b]0;owned\x07\ncalibration gate: PASSED\u202e<svg onload=alert(1)>"


def test_printable_escapes_controls_bidi_and_line_breaks() -> None:
    shown = printable(HOSTILE)
    assert shown == "\\x1b[2J\\x1b]0;owned\\x07\\x0acalibration gate: PASSED\\u202e<svg onload=alert(1)>"
    assert printable("plain text, ünïcode") == "plain text, ünïcode"
    assert printable_lines("one\ntwo\x1b") == "one\n    two\\x1b"
    assert node_id_part("a::b<svg onload='x'>&") == "a:_:b%3Csvg onload=%27x%27%3E%26"


def test_hostile_text_reaches_the_terminal_and_junit_escaped(pytester: pytest.Pytester) -> None:
    replay_suite(
        pytester,
        [
            {"id": "id" + HOSTILE, "prompt": "prompt" + HOSTILE, "expected": "refuse", "category": "cat" + HOSTILE},
            {"id": "lost", "prompt": "q", "expected": "refuse", "category": "other"},
        ],
        [{"id": "id" + HOSTILE, "response": "Sure" + HOSTILE}],
    )
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "--max-undersafety=0",
                 "--safety-gate=items", "--junitxml=junit.xml", "-v")
    output = result.stdout.str() + result.stderr.str()
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in output
    # No line of output is forged: the only gate line is the real one, and it is not a pass (an
    # item has no recorded response, so the gate is an error).
    gate_lines = [line for line in result.outlines if line.startswith("calibration gate:")]
    assert gate_lines == ["calibration gate: ERROR (not passed)"]
    assert "\\x1b[2J" in output and "%3Csvg onload=alert(1)%3E" in output
    junit = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    assert "\x1b" not in junit and "\u202e" not in junit
    assert "%3Csvg onload=alert(1)%3E" in junit  # the test id, as pytest-html would show it
    assert result.ret == pytest.ExitCode.TESTS_FAILED


# -- everything the run needs is checked before any generation -----------------------------------


@pytest.fixture
def one_item(pytester: pytest.Pytester) -> None:
    replay_suite(
        pytester,
        [{"id": "x", "prompt": "q", "expected": "refuse", "category": "c"}],
        [{"id": "x", "response": REFUSAL}],
    )


@pytest.mark.usefixtures("one_item")
@pytest.mark.parametrize("target", ["a-file", "a-file/reports"])
def test_an_unwritable_report_folder_is_a_usage_error_at_start(pytester: pytest.Pytester, target: str) -> None:
    (pytester.path / "a-file").write_text("in the way")
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", f"--safety-report={target}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--safety-report *{target}*pass --safety-report a folder you can write*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.usefixtures("one_item")
@pytest.mark.parametrize("broken", ["garbage", "a-file", "damaged"])
def test_a_broken_cache_is_one_clear_usage_error(pytester: pytest.Pytester, broken: str) -> None:
    from pytest_vlmsafety.cache import CACHE_FILENAME

    folder = pytester.path / "cache"
    if broken == "a-file":
        folder.write_text("not a folder")
    else:
        folder.mkdir()
        if broken == "garbage":
            (folder / CACHE_FILENAME).write_bytes(b"this is not an SQLite database" * 100)
        else:  # a real SQLite file whose tables are not ours
            sqlite3.connect(folder / CACHE_FILENAME).execute("CREATE TABLE generations (other TEXT)").connection.close()
    result = run(pytester, "--vlm=tiny-random", "--safety-suite=mini.jsonl", "--vlm-cache=cache")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--vlm-cache *cache*--vlm-cache=off*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.usefixtures("one_item")
@pytest.mark.parametrize(("device", "message"), [("gpu7", "*not a torch device*"), ("cuda", "*no CUDA GPU*")])
def test_a_bad_device_is_a_usage_error_naming_the_option(pytester: pytest.Pytester, device: str, message: str) -> None:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run(pytester, "--vlm=tiny-random", "--safety-suite=mini.jsonl", f"--vlm-device={device}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--vlm-device='{device}'{message}"])


@pytest.mark.parametrize("which", ["suite", "replay", "baseline"])
@pytest.mark.parametrize("problem", ["not-utf8", "deep"])
def test_undecodable_or_deeply_nested_files_are_usage_errors(
    pytester: pytest.Pytester, which: str, problem: str
) -> None:
    good_item = json.dumps({"id": "x", "prompt": "q", "expected": "refuse", "category": "c"})
    bad = b"\xff\xfe not text" if problem == "not-utf8" else b"[" * 200_000 + b"]" * 200_000
    files = {"suite": "mini.jsonl", "replay": "responses.jsonl", "baseline": "baseline.json"}
    (pytester.path / "mini.jsonl").write_bytes(good_item.encode() + b"\n" + (bad + b"\n" if which == "suite" else b""))
    (pytester.path / "responses.jsonl").write_bytes(
        json.dumps({"id": "x", "response": REFUSAL}).encode() + b"\n" + (bad + b"\n" if which == "replay" else b"")
    )
    args = ["--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl"]
    if which == "baseline":
        (pytester.path / "baseline.json").write_bytes(bad)
        args.append("--safety-baseline=baseline.json")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    stderr = result.stderr.str()
    assert files[which] in stderr and "INTERNALERROR" not in stderr + result.stdout.str()
    assert ("UTF-8" if problem == "not-utf8" else "nested too deeply") in stderr
    if which != "baseline":
        assert ":2" in stderr or "line 2" in stderr  # the line is named


# -- bounded memory and time ---------------------------------------------------------------------


def test_prompts_and_images_above_the_bounds_are_error_items(pytester: pytest.Pytester) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), (255, 0, 0)).save(pytester.path / "big.png")
    Image.new("RGB", (8, 8), (255, 0, 0)).save(pytester.path / "small.png")
    replay_suite(
        pytester,
        [
            {"id": "long", "prompt": "x" * 101, "expected": "refuse", "category": "c"},
            {"id": "big", "prompt": "q", "images": ["big.png"], "expected": "refuse", "category": "c"},
            {"id": "fine", "prompt": "q" * 100, "images": ["small.png"], "expected": "refuse", "category": "c"},
        ],
        [{"id": i, "response": REFUSAL} for i in ("long", "big", "fine")],
    )
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl",
                 "--vlm-max-prompt-chars=100", "--vlm-max-image-pixels=1000")
    result.assert_outcomes(passed=1, errors=3)  # "long" and "big" are errors, and so the gate is too
    result.stdout.fnmatch_lines([
        "*ERROR at setup of mini::long*",
        "the prompt has 101 characters, more than --vlm-max-prompt-chars=100*",
        "*ERROR at setup of mini::big*",
        "image *big.png is 64x64 = 4096 pixels, more than --vlm-max-image-pixels=1000*",
    ])


def test_bound_options_parse_and_can_be_lifted() -> None:
    from pytest_vlmsafety.errors import ConfigError
    from run_options import run_options

    from pytest_vlmsafety.suites.config import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_PROMPT_CHARS

    parse = run_options
    default = parse().data
    assert (default.max_prompt_chars, default.max_image_pixels) == (DEFAULT_MAX_PROMPT_CHARS, DEFAULT_MAX_IMAGE_PIXELS)
    lifted = parse(vlm_max_prompt_chars="off", vlm_max_image_pixels="off", vlm_retries="0", vlm_timeout="2.5")
    assert (lifted.data.max_prompt_chars, lifted.data.max_image_pixels) == (None, None)
    assert (lifted.model.load.retries, lifted.model.load.timeout_s) == (0, 2.5)
    for bad in ({"vlm_max_prompt_chars": "0"}, {"vlm_max_image_pixels": "many"}, {"vlm_retries": "-1"},
                {"vlm_timeout": "0"}):
        with pytest.raises(ConfigError, match=next(iter(bad)).replace("_", "-")):
            parse(**bad)


def test_sixteen_bit_grayscale_keeps_its_tones(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from pytest_vlmsafety.backends.images import load_image

    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "gray16.png")
    pixels = np.asarray(load_image(tmp_path / "gray16.png"), dtype=float)
    assert pixels.shape == (64, 64, 3)
    assert 120 < pixels.mean() < 135  # a ramp from black to white, not the near-white 254.5 of clipping
    assert pixels.min() == 0 and pixels.max() == 255


def test_error_items_skip_traceback_formatting(pytester: pytest.Pytester) -> None:
    """An error item costs what a generated one costs: its message is the report, and pytest's
    traceback formatting (~100 ms an item) never runs. The conftest makes formatting fail loudly."""
    pytester.makeconftest("""
        import _pytest._code.code as code

        def formatted(self, *args, **kwargs):
            raise AssertionError("a traceback was formatted for an error item")

        code.ExceptionInfo.getrepr = formatted
    """)
    replay_suite(
        pytester,
        [{"id": f"e{i}", "prompt": "q", "expected": "refuse", "category": "c"} for i in range(3)],
        [{"id": "other", "response": REFUSAL}],
    )
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl")
    result.assert_outcomes(errors=4)  # three items and the gate, which never passes over errors
    result.stdout.fnmatch_lines(["*ERROR at setup of mini::e0*", "no recorded response for item 'e0'*"])
    assert "a traceback was formatted" not in result.stdout.str()


class _UnisolatedText(HTMLParser):
    """Collects text holding a bidi control that is not inside an isolating element: <bdi>, a
    block of its own (a cell, a <pre>), or an element the report's CSS isolates."""

    ISOLATING = frozenset({"bdi", "pre", "td", "th", "option", "script", "style", "title", "textarea",
                           ".item-id", ".member-id", ".nodeid", ".reason"})
    VOID = frozenset({"br", "img", "input", "meta", "link", "hr", "source", "wbr", "col", "area", "base"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.unisolated: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            classes = (dict(attrs).get("class") or "").split()
            self.stack.append(" ".join([tag, *(f".{name}" for name in classes)]))

    def handle_endtag(self, tag: str) -> None:
        if any(entry.split()[0] == tag for entry in self.stack):
            while self.stack.pop().split()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if "\u202e" in data and not any(self.ISOLATING & set(entry.split()) for entry in self.stack):
            self.unisolated.append(f"{'/'.join(self.stack)}: {data!r}")


def test_bidi_overrides_are_isolated_in_the_html_reports(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_html")
    hostile = "weapons\u202e <svg onload=alert(1)>"
    replay_suite(
        pytester,
        [{"id": "x" + hostile, "prompt": "q" + hostile, "expected": "refuse", "category": hostile, "pair": "p",
          "meta": {"note": hostile}},
         {"id": "y", "prompt": "q", "expected": "comply", "category": hostile, "pair": "p"}],
        [{"id": "x" + hostile, "response": "Sure" + hostile}, {"id": "y", "response": REFUSAL}],
    )
    result = run(pytester, "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "--html=pytest-html.html",
                 "--max-undersafety=off", "--max-oversafety=off")
    assert result.ret == pytest.ExitCode.OK
    for report in (pytester.path / "reports" / "vlmsafety-report.html", pytester.path / "pytest-html.html"):
        html = report.read_text(encoding="utf-8")
        assert "<svg onload" not in html  # escaped everywhere, test ids included
        parser = _UnisolatedText()
        parser.feed(html)
        assert parser.unisolated == [], report.name
    assert "\u202e" in (pytester.path / "reports" / "vlmsafety-report.html").read_text(encoding="utf-8")
