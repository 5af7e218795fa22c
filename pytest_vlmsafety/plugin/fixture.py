"""Your own tests against the model under test.

- `vlm` (a session fixture, registered by the plugin whether or not `--vlm` is given) is this
  process's `Vlm`: it asks the same loaded model the suites use, through the same cache.
- `Answer` is what it returns; the refusal judge reads it when `.refused` is first read.
- `@pytest.mark.vlmsafety_case(expected=..., category=...)` makes the last answer a test asked for
  a record of a suite named after the test module (`CaseRecorder`), judged, gated and reported
  like a suite item; the record travels on the test report as suite records do. A record's
  identity is the test's node id (`case_identity`), checked unique at collection.
- A question is identified by its content (prompt, image bytes, system turn, length): the
  answer memo, the per-request seed and the cache key follow it, not the test that asks, so an
  answer does not change with `-k`, xdist or which test asked first.

Nothing here imports torch: the model loads on the first question.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..backends.base import QUESTION_SUITE
from ..distributed.cases_channel import MarkedCase, announce_cases
from ..errors import ItemError, VlmSafetyError
from ..items import COMPLIED, EXPECTED_VALUES, REFUSED, Record, SafetyItem, Verdict, record_for

if TYPE_CHECKING:
    from ..engine import Engine
    from .runner import ItemRunner

CASE_MARKER = "vlmsafety_case"
CASE_MARKER_HELP = (
    f"{CASE_MARKER}(expected='refuse'|'comply', category='...'): the last answer this test asked "
    "the `vlm` fixture for joins the calibration as a record of a suite named after the test module"
)
DEFAULT_CASE_CATEGORY = "uncategorized"
NO_MODEL_REASON = "the vlm fixture needs a model: run pytest with --vlm MODEL (e.g. --vlm=tiny-random)"
# The keys a case of `Vlm.ask_many` may have: the keyword arguments of `Vlm.ask`.
CASE_KEYS = ("prompt", "images", "system", "max_new_tokens")

# This process's Vlm, set where items run (a single process or an xdist worker) with --vlm.
VLM_KEY = pytest.StashKey["Vlm"]()
LAST_ANSWER_KEY = pytest.StashKey["Answer"]()
CASE_RECORD_KEY = pytest.StashKey[Record]()
# Why a marked test's record would replace another's (an xdist worker; see pytest_runtest_setup).
CASE_CLASH_KEY = pytest.StashKey[str]()

ImagesArg = str | Path | Sequence[str | Path]


class Answer:
    """One response of the model. `str(answer)` is its text; `.refused` and `.reason` are the
    refusal judge's verdict, computed when first read. A question that could not be answered (a
    missing image, a prompt over `--vlm-max-prompt-chars`, a failed request) has `.error`, and
    reading its text or verdict raises VlmSafetyError with that message: one bad case of
    `ask_many` costs that case alone."""

    def __init__(
        self,
        text: str | None,
        *,
        prompt: str,
        images: tuple[Path, ...],
        system: str | None,
        cached: bool,
        judge: Callable[[SafetyItem, str], Verdict],
        error: str | None = None,
    ) -> None:
        self._text = text
        self.error = error if error is not None or text is not None else "no response"
        self.prompt = prompt
        self.images = images
        self.system = system
        self.cached = cached
        self._judge = judge
        self._verdict: Verdict | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            raise VlmSafetyError(self.error)
        return self._text

    @property
    def verdict(self) -> Verdict:
        if self._verdict is None:
            self._verdict = self._judge(self.as_item(), self.text)
        return self._verdict

    @property
    def refused(self) -> bool:
        """Whether the judge read a refusal. An answer the judge gave no verdict on (`unjudged`:
        a language it does not read) raises VlmSafetyError: neither `assert answer.refused` nor
        `assert not answer.refused` may pass on it."""
        label = self.verdict.label
        if label not in (REFUSED, COMPLIED):
            raise VlmSafetyError(
                f"the judge gave no refused/complied verdict on this answer ({label}: {self.verdict.reason}); "
                f"response: {shorten(self.text)!r}"
            )
        return label == REFUSED

    @property
    def reason(self) -> str:
        """Why the judge decided so, with the response: the message of `assert answer.refused,
        answer.reason`."""
        return f"{self.verdict.label} ({self.verdict.reason}); response: {shorten(self.text)!r}"

    def as_item(self) -> SafetyItem:
        """The question as an item for the judge, which reads the prompt beside the response."""
        return SafetyItem(id="ask", suite="vlm", category="", prompt=self.prompt, expected="refuse", images=self.images)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        if self._text is None:
            return f"Answer(error={shorten(self.error or '')!r})"
        return f"Answer(text={shorten(self._text)!r}, cached={self.cached})"


def shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


@dataclass(frozen=True)
class Question:
    """A request as the engine and the in-process memo see it (image paths resolved). Equal
    questions have equal content: the images count by their bytes (`image_digests`, as the cache
    keys them), not their paths, so an image rewritten between two asks is asked again."""

    prompt: str
    images: tuple[Path, ...] = field(compare=False)
    system: str | None
    max_new_tokens: int
    # Filled in by `Vlm._checked` once the images are known to exist.
    image_digests: tuple[str, ...] = ()


class Vlm:
    """The model under test, as the `vlm` fixture. Questions go through the generation cache and
    are generated in batches; answers are also kept in this process, so a test that asks again
    for a case a fixture batched with `ask_many` gets that answer at once."""

    def __init__(self, engine: Engine, recorder: CaseRecorder) -> None:
        self.engine = engine
        self.recorder = recorder
        self._answers: dict[Question, Answer] = {}

    def ask(
        self, prompt: str, images: ImagesArg = (), *, system: str | None = None, max_new_tokens: int | None = None
    ) -> Answer:
        """The model's answer to `prompt` with `images` (paths relative to the test file's folder).
        Raises VlmSafetyError naming the cause when the question cannot be answered."""
        case = {"prompt": prompt, "images": images, "system": system, "max_new_tokens": max_new_tokens}
        answer = self.ask_many([case])[0]
        if answer.error is not None:
            raise VlmSafetyError(answer.error)
        return answer

    def ask_many(self, cases: Sequence[Mapping[str, Any]]) -> list[Answer]:
        """One Answer per case (a dict with `ask`'s arguments as keys), generated in batches. A
        malformed case (a wrong key or type) raises TypeError: the calling code is wrong. A case
        that cannot be answered gets an Answer with `.error`; the others are answered."""
        drafts = [self._question(index, case) for index, case in enumerate(cases)]
        answers: list[Answer | None] = [None] * len(drafts)
        checked: dict[int, Question] = {}
        for index, draft in enumerate(drafts):
            try:
                checked[index] = self._checked(draft)
            except ItemError as exc:
                answers[index] = self._failed(draft, str(exc))
        # A replayed answer belongs to the test that asked (its record): never shared between tests.
        replay = self.engine.backend_spec.backend.replays
        todo = list(dict.fromkeys(q for q in checked.values() if replay or q not in self._answers))
        fresh = self._generate(todo) if todo else {}
        for index, question in checked.items():
            answers[index] = fresh.get(question) or self._answers[question]
        done = [answer for answer in answers if answer is not None]
        if done:
            self.recorder.asked(done[-1])
        return done

    def _question(self, index: int, case: Mapping[str, Any]) -> Question:
        where = f"vlm.ask_many case {index}"
        if not isinstance(case, Mapping):
            raise TypeError(f"{where}: a case is a dict with keys {', '.join(CASE_KEYS)}, got {type(case).__name__}")
        unknown = sorted(set(case) - set(CASE_KEYS))
        if unknown:
            raise TypeError(
                f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(CASE_KEYS)}"
            )
        prompt = case.get("prompt")
        if not isinstance(prompt, str):
            raise TypeError(f"{where}: 'prompt' must be a string, got {type(prompt).__name__}")
        system = case.get("system")
        if system is not None and not isinstance(system, str):
            raise TypeError(f"{where}: 'system' must be a string or None, got {type(system).__name__}")
        max_new_tokens = case.get("max_new_tokens")
        if max_new_tokens is not None and (not isinstance(max_new_tokens, int) or max_new_tokens < 1):
            raise TypeError(f"{where}: 'max_new_tokens' must be a positive int or None, got {max_new_tokens!r}")
        raw_images = case.get("images") or ()
        paths = [raw_images] if isinstance(raw_images, (str, Path)) else list(raw_images)
        base = self.recorder.test_folder()
        images = tuple(path if path.is_absolute() else base / path for path in map(Path, paths))
        # No system= of its own: the run's --vlm-system-prompt, the model as it is deployed.
        system = system if system is not None else self.engine.generation.system_prompt
        return Question(prompt, images, system, max_new_tokens or self.engine.default_max_new_tokens())

    def _checked(self, question: Question) -> Question:
        """The question with its images' digests, after the checks a suite item gets (the run's
        --vlm-max-prompt-chars and --vlm-max-image-pixels, images that exist); ItemError names
        what is wrong."""
        from ..backends.images import check_image_sizes, check_images_exist
        from ..cache import sha256_file
        from ..engine import check_prompt_length

        bounds = self.engine.data
        check_prompt_length(
            SafetyItem(id="ask", suite=QUESTION_SUITE, category="", prompt=question.prompt, expected="refuse"),
            bounds.max_prompt_chars,
        )
        check_images_exist(question.images)
        check_image_sizes(question.images, bounds.max_image_pixels)
        digests = tuple(sha256_file(path) for path in question.images)
        return Question(question.prompt, question.images, question.system, question.max_new_tokens, digests)

    def _failed(self, question: Question, error: str) -> Answer:
        return Answer(
            None, prompt=question.prompt, images=question.images, system=question.system, cached=False,
            judge=self.engine.judge_answer, error=f"vlm.ask: {error} (prompt {shorten(question.prompt, 80)!r})",
        )

    def _generate(self, questions: list[Question]) -> dict[Question, Answer]:
        """An Answer per question, failed ones included; answered ones are also kept in the memo."""
        asked_by = self.recorder.asked_by()
        # The run's decoding (--vlm-temperature ...), one sample (the first) an ask: --vlm-samples
        # applies to the suites' items, whose records aggregate the samples. The request is the
        # question alone (suite QUESTION_SUITE, no item id): its seed and cache key do not depend
        # on which test asked first.
        requests = [
            self.engine.generation.request(
                QUESTION_SUITE, "", q.prompt, q.images, q.max_new_tokens, system=q.system, asked_by=asked_by
            )
            for q in questions
        ]
        # A line per single question would drown the test dots; a batch shows its progress.
        label = asked_by[1] if asked_by else QUESTION_SUITE
        generations = self.engine.generate(requests, label=label, show_progress=len(requests) > 1)
        answers: dict[Question, Answer] = {}
        for question, (generation, cached) in zip(questions, generations, strict=True):
            if generation.text is None:
                # A corrupt image, a failed request: the backend's message names the cause.
                answers[question] = self._failed(question, generation.error or "no response")
                continue
            answers[question] = self._answers[question] = Answer(
                generation.text, prompt=question.prompt, images=question.images, system=question.system,
                cached=cached, judge=self.engine.judge_answer,
            )
        return answers


@pytest.fixture(scope="session")
def vlm(request: pytest.FixtureRequest) -> Vlm:
    """The model under test (`--vlm`), loaded once per process; see the README's "Your own tests"."""
    found = request.config.stash.get(VLM_KEY, None)
    if found is None:
        pytest.skip(NO_MODEL_REASON)
    return found


def marked_case(item: pytest.Item) -> MarkedCase | None:
    """The case of a `vlmsafety_case` test: its marker's fields and its identity (case_identity);
    None without the marker. The one reader of the marker: a bad value is a usage error naming
    the test."""
    marker = item.get_closest_marker(CASE_MARKER)
    if marker is None:
        return None
    if marker.args:
        raise pytest.UsageError(f"{item.nodeid}: {CASE_MARKER} takes keywords only: expected=..., category=...")
    unknown = sorted(set(marker.kwargs) - {"expected", "category"})
    if unknown:
        raise pytest.UsageError(f"{item.nodeid}: {CASE_MARKER}: unknown field(s) {', '.join(unknown)}")
    expected = marker.kwargs.get("expected")
    if expected not in EXPECTED_VALUES:
        raise pytest.UsageError(
            f"{item.nodeid}: {CASE_MARKER} needs expected= one of "
            f"{', '.join(map(repr, EXPECTED_VALUES))}, got {expected!r}"
        )
    category = marker.kwargs.get("category", DEFAULT_CASE_CATEGORY)
    if not isinstance(category, str) or not category:
        raise pytest.UsageError(f"{item.nodeid}: {CASE_MARKER} category must be a non-empty string, got {category!r}")
    suite, case_id = case_identity(item)
    return MarkedCase(suite=suite, id=case_id, expected=expected, category=category)


def case_identity(item: pytest.Item) -> tuple[str, str]:
    """(suite, id) of a test's case record, from its node id, which pytest keeps unique: the
    suite is the module's path from the rootdir without `.py` (`test_safety` for a module at the
    rootdir, `tests/safety/test_safety` below it), the id the rest of the node id (`test_x`,
    `TestA::test_x[param]`). The module's name alone let two classes, or two folders' modules of
    one name, overwrite one another's records."""
    module, _, rest = item.nodeid.partition("::")
    return (module[:-3] if module.endswith(".py") else module), rest or item.name


def case_record(marked: MarkedCase, answer: Answer | None, error: str | None = None) -> Record:
    """The record of a marked test: its answer judged, or an error."""
    case = SafetyItem(
        id=marked.id, suite=marked.suite, category=marked.category,
        prompt=answer.prompt if answer else "",
        expected=marked.expected,
        images=answer.images if answer else (),
    )
    if error is None and answer is None:
        error = "the test asked the vlm fixture nothing: a vlmsafety_case test must ask the model"
    if error is None and answer is not None and answer.error is not None:
        error = answer.error
    if error is not None or answer is None:
        response = answer._text if answer else None
        return record_for(case, response=response, error=error or "no answer")
    try:
        verdict = answer.verdict
    except Exception as exc:  # noqa: BLE001 - a judge failure costs this case, not the run
        return record_for(case, response=answer.text, error=f"the judge failed: {type(exc).__name__}: {exc}")
    return record_for(case, response=answer.text, verdict=verdict, cached=answer.cached)


def case_identity_clashes(
    marked: Sequence[tuple[pytest.Item, MarkedCase]], suite_names: set[str]
) -> list[tuple[pytest.Item, str]]:
    """(test, message) for every marked test whose record would replace another's: two tests of
    one identity, or a case suite named like a suite of the run (as preflight.check_unique_test_ids
    for items)."""
    clashes: list[tuple[pytest.Item, str]] = []
    first: dict[tuple[str, str], pytest.Item] = {}
    for item, case in marked:
        suite, case_id = identity = case.suite, case.id
        if suite in suite_names:
            clashes.append((item, (
                f"{item.nodeid}: its vlmsafety_case record would belong to suite {suite!r}, which is also the "
                f"name of a suite of this run (--safety-suite); rename the test module or the suite's file"
            )))
        other = first.setdefault(identity, item)
        if other is not item:
            message = (
                f"{other.nodeid} and {item.nodeid} would both record the vlmsafety_case {case_id!r} of suite "
                f"{suite!r}; give one of the tests another name"
            )
            clashes.extend([(other, message), (item, message)])
    return clashes


class CaseRecorder:
    """Where items run: knows the running test (for image paths and the last answer) and turns a
    marked test's last answer into its record."""

    def __init__(self, config: pytest.Config, engine: Engine, runner: ItemRunner) -> None:
        self.config = config
        self.runner = runner
        self.current: pytest.Item | None = None
        # Scopes of the fixtures being set up: an answer asked by a module or session fixture
        # belongs to no single test.
        self.fixture_scopes: list[str] = []
        config.stash[VLM_KEY] = Vlm(engine, self)

    # -- what the Vlm asks of the running test --------------------------------------------------

    def test_folder(self) -> Path:
        item = self.current
        return item.path.parent if item is not None else Path(self.config.invocation_params.dir)

    def asking_test(self) -> pytest.Item | None:
        """The test a question belongs to: the running one when it asks in its body or a
        function fixture; None in a broader fixture, whose answers belong to no single test."""
        item = self.current
        if item is not None and (not self.fixture_scopes or self.fixture_scopes[-1] == "function"):
            return item
        return None

    def asked_by(self) -> tuple[str, str] | None:
        """The case identity of the asking test: `replay:` answers from that test's record."""
        item = self.asking_test()
        return case_identity(item) if item is not None else None

    def asked(self, answer: Answer) -> None:
        item = self.asking_test()
        if item is not None:
            item.stash[LAST_ANSWER_KEY] = answer

    # -- hooks -----------------------------------------------------------------------------------

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # A bad marker, or two records of one identity, is a usage error before anything runs.
        suite_names = {selection.suite.name for selection, _ in self.runner.loaded}
        marked = [(item, case) for item in items if (case := marked_case(item)) is not None]
        clashes = case_identity_clashes(marked, suite_names)
        if clashes and not hasattr(self.config, "workerinput"):
            raise pytest.UsageError(clashes[0][1])
        # On an xdist worker a usage error here becomes an internal error that hides the message:
        # each clashing test errors with it instead (an error record; the gate does not pass).
        for item, message in clashes:
            item.stash[CASE_CLASH_KEY] = message

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        clash = item.stash.get(CASE_CLASH_KEY, None)
        if clash is not None:
            raise VlmSafetyError(clash)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """On an xdist worker: tell the controller which collected tests are cases, so that a
        worker that dies inside one still leaves its error record (cases_channel)."""
        if not hasattr(self.config, "workerinput"):
            return  # a single process that dies writes nothing at all
        announce_cases(self.config, {
            item.nodeid: case for item in session.items if (case := marked_case(item)) is not None
        })

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self.current = item
        try:
            return (yield)
        finally:
            self.current = None

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any]) -> Generator[None, object, object]:
        self.fixture_scopes.append(fixturedef.scope)
        try:
            return (yield)
        finally:
            self.fixture_scopes.pop()

    @pytest.hookimpl(wrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, object, object]:
        result = yield  # an exception in the test propagates: makereport makes it an error record
        case = marked_case(pyfuncitem)
        if case is not None:
            record = case_record(case, pyfuncitem.stash.get(LAST_ANSWER_KEY, None))
            pyfuncitem.stash[CASE_RECORD_KEY] = record
            self.runner.check_record(record)  # pass, xfail, or a failure as for a suite item
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        case = marked_case(item)
        decisive = call.when == "call" or (call.when == "setup" and report.failed)
        if case is None or not decisive:
            return report
        record = item.stash.get(CASE_RECORD_KEY, None)
        if record is None:
            if call.excinfo is None or report.skipped:
                return report  # skipped, or xfailed by the test's own mark: not a case of this run
            error = f"{call.excinfo.typename}: {call.excinfo.value}" if call.when == "call" else (
                f"setup failed: {call.excinfo.typename}: {call.excinfo.value}"
            )
            record = case_record(case, item.stash.get(LAST_ANSWER_KEY, None), error=error)
        else:
            from .collect import SafetyItemError, SafetyMismatch

            if call.excinfo is not None and call.excinfo.errisinstance((SafetyItemError, SafetyMismatch)):
                report.longrepr = str(call.excinfo.value)  # the message is the whole story
        self.runner.attach_record(report, record, item.nodeid)
        return report
