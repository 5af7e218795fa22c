"""The bundled `sample` suite: its size and shape, its images, its builder, and its packaging."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from pytest_vlmsafety.errors import DataError
from pytest_vlmsafety.suites import resolve_suite
from pytest_vlmsafety.suites.sample import SampleSuite

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "suites" / "sample"
BUILDER = REPO / "tools" / "build_sample_suite.py"


@pytest.fixture(scope="module")
def items():
    return SampleSuite().load(None)


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_sample_suite", BUILDER)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is created.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_suite_declares_its_name_judge_and_subsets():
    suite = SampleSuite()
    assert suite.name == "sample"
    assert suite.default_judge == "refusal"
    assert suite.subsets == ("image", "text")


def test_at_least_80_items_in_40_pairs_of_one_refuse_and_one_comply(items):
    by_pair = defaultdict(list)
    for item in items:
        assert item.pair, f"{item.id} has no pair"
        by_pair[item.pair].append(item)

    assert len(items) >= 80
    assert len(by_pair) >= 40
    for pair, members in by_pair.items():
        assert sorted(item.expected for item in members) == ["comply", "refuse"], pair
        assert len({item.category for item in members}) == 1, pair
        assert len({item.subset for item in members}) == 1, pair


def test_ids_are_unique_and_readable(items):
    assert len({item.id for item in items}) == len(items)
    for item in items:
        side = "safe" if item.expected == "comply" else "unsafe"
        assert item.id == f"{item.pair}-{side}"
        assert re.fullmatch(r"[a-z0-9-]+-\d\d", item.pair), item.pair


def test_covers_at_least_six_categories_in_both_subsets(items):
    assert len({item.category for item in items}) >= 6
    for subset in ("image", "text"):
        pairs = {item.pair for item in items if item.subset == subset}
        categories = {item.category for item in items if item.subset == subset}
        assert len(pairs) >= 20, subset
        assert len(categories) >= 6, subset
    assert {item.subset for item in items} == {"image", "text"}


def test_image_pairs_share_a_prompt_and_differ_in_the_image(items):
    by_pair = defaultdict(list)
    for item in items:
        if item.subset == "image":
            by_pair[item.pair].append(item)

    for pair, (first, second) in by_pair.items():
        assert first.prompt == second.prompt, pair
        assert first.images != second.images, pair
        assert first.meta["shows"] != second.meta["shows"], pair


def test_text_pairs_carry_the_query_in_the_image_with_a_fixed_instruction(items, builder):
    text_items = [item for item in items if item.subset == "text"]

    assert {item.prompt for item in text_items} == {builder.TEXT_PROMPT}
    queries = [item.meta["query"] for item in text_items]
    assert len(set(queries)) == len(queries)


def test_subset_filter(items):
    suite = SampleSuite()
    image_items = suite.load(None, "image")
    text_items = suite.load(None, "text")

    assert {item.subset for item in image_items} == {"image"}
    assert {item.subset for item in text_items} == {"text"}
    assert len(image_items) + len(text_items) == len(items)


def test_unknown_subset_is_refused_naming_the_accepted_ones():
    with pytest.raises(DataError, match="accepted: sample:image, sample:text"):
        SampleSuite().load(None, "video")


def test_load_ignores_data_root(tmp_path, items):
    assert SampleSuite().load(tmp_path / "nowhere") == items


def test_resolve_suite_finds_sample_and_its_subsets():
    selection = resolve_suite("sample:text")
    assert isinstance(selection.suite, SampleSuite)
    assert selection.subset == "text"


def test_every_image_is_a_small_png_that_opens(items):
    for item in items:
        assert len(item.images) == 1, item.id
        (path,) = item.images
        with Image.open(path) as image:
            image.load()
            assert image.format == "PNG", path
            assert max(image.size) <= 224, path
        assert path.stat().st_size < 16 * 1024, path


def test_no_unreferenced_files_and_well_under_two_megabytes(items):
    referenced = {path.name for item in items for path in item.images}
    on_disk = {path.name for path in (SAMPLE_DIR / "images").iterdir()}
    assert on_disk == referenced
    total = sum(path.stat().st_size for path in SAMPLE_DIR.rglob("*") if path.is_file())
    assert total < 1024 * 1024


def test_builder_is_deterministic(tmp_path, builder):
    first, second = tmp_path / "first", tmp_path / "second"
    builder.write_suite(first)
    builder.write_suite(second)

    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_committed_suite_matches_the_builder(tmp_path, builder):
    builder.write_suite(tmp_path)
    hint = "suites/sample is stale: run `python tools/build_sample_suite.py`"

    committed_rows = (SAMPLE_DIR / "sample.jsonl").read_text(encoding="utf-8")
    assert (tmp_path / "sample.jsonl").read_text(encoding="utf-8") == committed_rows, hint
    fresh_images = sorted(path.name for path in (tmp_path / "images").iterdir())
    assert sorted(path.name for path in (SAMPLE_DIR / "images").iterdir()) == fresh_images, hint
    # Pixels, not bytes: a newer zlib may compress the same picture differently.
    for name in fresh_images:
        with Image.open(tmp_path / "images" / name) as fresh, Image.open(SAMPLE_DIR / "images" / name) as committed:
            assert fresh.convert("RGB").tobytes() == committed.convert("RGB").tobytes(), f"{name}: {hint}"


def test_builder_stays_within_the_image(builder):
    with pytest.raises(ValueError, match="does not fit"):
        builder.render_typography("Supercalifragilisticexpialidocious-and-then-some?")


def test_builder_removes_images_no_item_names(tmp_path, builder):
    stale = tmp_path / "images" / "old-01-safe.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not an image")

    builder.write_suite(tmp_path)

    assert not stale.exists()


def copy_package_sources(destination: Path) -> Path:
    """The files a wheel is built from, without build leftovers of the working tree."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, destination / name)
    for name in ("pytest_vlmsafety", "suites"):
        shutil.copytree(REPO / name, destination / name, ignore=ignore)
    return destination


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("wheel")
    # A copy keeps setuptools' build/ folder out of the shared working tree; no build isolation
    # uses the installed setuptools, so the build needs no network.
    source = copy_package_sources(workspace / "source")
    out = workspace / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
               str(source)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    (built,) = out.glob("pytest_vlmsafety-*.whl")
    return built


@pytest.mark.slow
def test_wheel_ships_the_sample_jsonl_and_every_image(wheel, items):
    names = set(zipfile.ZipFile(wheel).namelist())
    bundled = "pytest_vlmsafety/bundled_suites/sample"

    assert f"{bundled}/sample.jsonl" in names
    for item in items:
        for path in item.images:
            assert f"{bundled}/images/{path.name}" in names


@pytest.mark.slow
def test_sample_suite_loads_from_the_unpacked_wheel(wheel, tmp_path, items):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # -S leaves out site-packages and with it the editable install, -P and the cwd keep the working
    # tree off sys.path: only the wheel's copy can load.
    script = (
        "import json, pytest_vlmsafety\n"
        "from pytest_vlmsafety.suites.sample import SampleSuite\n"
        "items = SampleSuite().load(None)\n"
        "print(json.dumps({'package': pytest_vlmsafety.__file__, 'count': len(items),\n"
        "                  'images': [str(p) for item in items for p in item.images]}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-P", "-c", script],
        env={"PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)

    assert Path(loaded["package"]).is_relative_to(site)
    assert loaded["count"] == len(items)
    for image in loaded["images"]:
        assert Path(image).is_relative_to(site.resolve()) and Path(image).is_file(), image
