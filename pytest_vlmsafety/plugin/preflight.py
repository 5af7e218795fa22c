"""Checks of everything a run needs, done once at start-up before any generation.

Each check raises ConfigError (a pytest usage error, exit status 4) with a message that names the
option or file at fault and says what to do. Without them a bad report folder failed only after
every item had run (nothing written), a corrupt cache or a bad device failed every item with a
message that did not name the option, and two items sharing a test id ran as one.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..backends import BackendSpec
from ..backends.config import GenerationConfig, LoadConfig
from ..errors import ConfigError
from ..items import SafetyItem
from ..suites import SuiteSelection
from ..suites.registry import UNSAFECONCEPTS_CLASSIFIERS_FLAG, registered_option_values
from ..text import printable
from .run_options import RunOptions

CACHE_COLUMNS: dict[str, str] = {
    "generations": "key, response, created",
    "judgements": "key, verdict, created",
    "file_hashes": "path, size, mtime_ns, sha256",
    "meta": "name, value",
}

# Backends that run a model in this process, on a torch device.


def check_run(
    base_dir: Path,
    options: RunOptions,
    spec: BackendSpec,
    loaded: Sequence[tuple[SuiteSelection, list[SafetyItem]]],
) -> None:
    """Every start-up check of the controller (or the single process of a run without xdist)."""
    check_suite_names([selection for selection, _ in loaded])
    check_unique_test_ids(loaded)
    load = options.model.load
    check_report_dir(base_dir / options.output.report_dir)
    if load.device is not None and spec.backend.local:
        check_device(load.device)
    check_deployment(options.generation, load, spec)
    classifiers = registered_option_values()[UNSAFECONCEPTS_CLASSIFIERS_FLAG]
    if classifiers is not None:
        check_classifier_folder(base_dir / classifiers, loaded)
    if load.processor_kwargs and spec.backend.local:
        check_processor_kwargs(load, spec)
    if spec.backend.replays:
        check_replay_file(Path(spec.target))
    elif options.output.cache_dir is not None:
        check_cache(base_dir / options.output.cache_dir)


def _suite_source(selection: SuiteSelection) -> str:
    path = getattr(selection.suite, "path", None)
    return f"the file {path}" if path is not None else f"the built-in suite {selection.suite.name!r}"


def check_suite_names(selections: Sequence[SuiteSelection]) -> None:
    """Two different suites must not share a name: their items and results would be merged, and an
    item whose id both use would be dropped. A JSONL suite is named after its file's stem."""
    first: dict[str, SuiteSelection] = {}
    for selection in selections:
        name = selection.suite.name
        seen = first.setdefault(name, selection)
        if seen is selection or _suite_source(seen) == _suite_source(selection):
            continue
        raise ConfigError(
            f"two suites are both named {name!r}: {_suite_source(seen)} and {_suite_source(selection)}; "
            "a JSONL suite is named after its file's stem, so rename one of the files"
        )


def check_unique_test_ids(loaded: Sequence[tuple[SuiteSelection, list[SafetyItem]]]) -> None:
    """Every item gets exactly one test: no two items of one suite share an id, and no two items
    share a test id once their suite, category and id are made node-id safe (`a::b` and `a:_:b`
    both become `a:_:b`). Items that several selections of one suite share (`sample` and
    `sample:image`) are one item and run once."""
    from .collect import node_name

    by_key: dict[str, SafetyItem] = {}
    by_test_id: dict[str, SafetyItem] = {}
    for selection, items in loaded:
        keys_in_selection: set[str] = set()
        for item in items:
            key = item.key
            if key in keys_in_selection:
                raise ConfigError(
                    f"suite {selection.label!r} lists the item id {printable(item.id)!r} twice; "
                    "every item id must be unique within its suite"
                )
            keys_in_selection.add(key)
            if key in by_key:
                continue  # the same item from an overlapping selection of its suite
            by_key[key] = item
            test_id = "::".join(node_name(part) for part in (selection.label, item.category, item.id))
            other = by_test_id.setdefault(test_id, item)
            if other is not item:
                raise ConfigError(
                    f"two items would get the same test id {test_id!r}: "
                    f"{_describe(other)} and {_describe(item)}; test ids replace '::' and "
                    "control or markup characters, so give the items ids (or categories) that differ "
                    "in other characters"
                )


def _describe(item: SafetyItem) -> str:
    return f"item {printable(item.id)!r} (suite {printable(item.suite)!r}, category {printable(item.category)!r})"


def check_report_dir(folder: Path) -> None:
    """`--safety-report` must be a folder this process can write, checked before any item runs
    (the results are written at the end, when a failure would lose every item's work)."""
    hint = "pass --safety-report a folder you can write"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--safety-report {folder}: not a folder (a file is in the way); {hint}")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--safety-report {folder}: {existing} is a file, so the folder cannot be created; {hint}")
    if existing != folder:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(
                f"--safety-report {folder}: cannot create it inside {existing} (no write permission); {hint}"
            )
        return
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vlmsafety-write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"--safety-report {folder}: cannot write there ({exc.strerror or exc}); {hint}") from None


def check_cache(folder: Path) -> None:
    """The generation cache opens, is SQLite and is writable. A broken cache is a usage error and
    never touched: deleting it is the user's decision (it may hold days of generations)."""
    from ..cache import CACHE_FILENAME, Cache

    hint = (
        f"remove or move it (python -m pytest_vlmsafety cache clear --dir {folder} if it opens), "
        "pass another folder with --vlm-cache DIR, or run without a cache: --vlm-cache=off"
    )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--vlm-cache {folder}: not a folder (a file is in the way); {hint}")
    try:
        cache = Cache(folder)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"--vlm-cache {folder}: the cache {folder / CACHE_FILENAME} cannot be used ({exc}); {hint}"
        ) from None
    try:
        # Reads each table through the columns the store uses: a file whose header survived but
        # whose tables did not (or are not ours) fails here, not on the first item.
        for table, columns in CACHE_COLUMNS.items():
            cache.connection.execute(f"SELECT {columns} FROM {table} LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(f"--vlm-cache {folder}: the cache {cache.path} is damaged ({exc}); {hint}") from None
    finally:
        cache.close()


def check_device(device: str) -> None:
    """`--vlm-device` names a torch device that exists here (torch is needed by the backend anyway)."""
    import torch

    accepted = "cpu, cuda, cuda:N (a visible GPU), mps"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--vlm-device={device!r}: not a torch device; accepted: {accepted}") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"--vlm-device={device!r}: no CUDA GPU is visible here; pass --vlm-device=cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ConfigError(
                f"--vlm-device={device!r}: only {count} GPU(s) are visible (cuda:0 to cuda:{count - 1})"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--vlm-device={device!r}: MPS is not available here; pass --vlm-device=cpu")


def check_deployment(generation: GenerationConfig, load: LoadConfig, spec: BackendSpec) -> None:
    """The system prompt and sampling options against the backend: a replay file holds one
    recorded response per item, so it can honour neither; a local model's chat template must
    render the system turn (rendered here once, from the processor alone, so a template that
    rejects it is one usage error before any model loads)."""
    if spec.backend.replays:
        for flag, given in (
            ("--vlm-system-prompt", generation.system_prompt is not None),
            ("--vlm-temperature", generation.sampling is not None),
        ):
            if given:
                raise ConfigError(
                    f"{flag} cannot apply to --vlm={spec.raw}: a replay file holds the responses as they were "
                    "recorded; leave the option out, or run the model itself"
                )
    if generation.system_prompt is not None and spec.backend.renders_chat_template:
        check_chat_template_system_turn(generation.system_prompt, load, spec)


def check_chat_template_system_turn(system_prompt: str, load: LoadConfig, spec: BackendSpec) -> None:
    """Render --vlm-system-prompt through the processor's chat template of a local model. A
    processor that cannot be loaded here is left to the backend, which names its cause."""
    from ..backends.prompts import check_system_turn

    try:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(
            spec.target, revision=load.revision, trust_remote_code=load.trust_remote_code, **load.processor_settings
        )
    except Exception:  # noqa: BLE001 - the model load reports a processor that fails to load
        return
    if getattr(processor, "chat_template", None):
        check_system_turn(processor, system_prompt, model=spec.target, option="--vlm-system-prompt")


def check_replay_file(path: Path) -> None:
    """A replay file is read in full once at start (each worker reads it again when it loads the
    backend): an unreadable, non-UTF-8 or ambiguous file is a usage error, not an error per item."""
    from ..backends.replay import read_recorded_responses

    if not path.is_file():
        raise ConfigError(f"--vlm=replay:{path}: no such file; pass a results JSON or a JSON Lines file of responses")
    read_recorded_responses(path)  # raises ConfigError naming the file, the line or the record


def check_classifier_folder(folder: Path, loaded: Sequence[tuple[SuiteSelection, list[SafetyItem]]]) -> None:
    """`--unsafeconcepts-classifiers DIR` asks for the classifiers in DIR: a folder that is not
    there, or (in a run of UnsafeConcepts) lacks a classifier, is a usage error, never a quiet
    fall back to the rule parsers."""
    if not folder.is_dir():
        raise ConfigError(
            f"{UNSAFECONCEPTS_CLASSIFIERS_FLAG} {folder}: not a folder; give the folder holding "
            "perception_classifier/, alignment_classifier/ and roberta-base/, or leave the option out to use the hub"
        )
    from ..judges.unsafeconcepts_classifier import CLASSIFIER_FOR_TASK, resolve_files

    tasks = {item.task for selection, items in loaded if selection.suite.name == "unsafeconcepts" for item in items}
    for task in sorted(tasks & set(CLASSIFIER_FOR_TASK)):
        resolve_files(CLASSIFIER_FOR_TASK[task], folder)  # ConfigError naming what is missing


def check_processor_kwargs(load: LoadConfig, spec: BackendSpec) -> None:
    """Each --vlm-processor-kwargs key must be one the model's processor takes: transformers
    ignores an unknown one (`max_pixel` for `max_pixels`) without a word, and the run facts would
    record it as applied. A processor that cannot be loaded here is left to the backend, which
    checks again once it has loaded it."""
    from ..backends import TINY_RANDOM, model_location
    from ..backends.processor_kwargs import check_processor_kwargs as check
    from ..backends.tiny import build_tiny_model

    # tiny-random under any backend has the tiny model's processor; under vllm: its copy in vLLM's
    # layout is built when the engine loads, not here.
    target = str(build_tiny_model()) if spec.target == TINY_RANDOM else model_location(spec)
    try:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(
            target, revision=load.revision, trust_remote_code=load.trust_remote_code, **load.processor_settings
        )
    except Exception:  # noqa: BLE001 - the model load reports a processor that fails to load
        return
    check(processor, load.processor_settings, model=target)
