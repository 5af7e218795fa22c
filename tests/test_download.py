"""--safety-download: hub datasets fetched with snapshot_download, failures explained. No network:
snapshot_download is replaced in every test."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import huggingface_hub
import pytest
from huggingface_hub import constants as hub_constants
from huggingface_hub import errors
from PIL import Image

from pytest_vlmsafety import download
from pytest_vlmsafety.download import (
    HUB_SUITES,
    download_suite_data,
    expected_layout,
    hub_repo_id,
    suite_manifest,
)
from pytest_vlmsafety.errors import ConfigError, DataError
from pytest_vlmsafety.suites import holisafe, mis
from pytest_vlmsafety.suites.holisafe import HoliSafeSuite

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online by default, with no token from the environment; tests that need otherwise say so."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)


def fake_snapshot(monkeypatch: pytest.MonkeyPatch, populate: Callable[[Path], None]) -> list[dict[str, Any]]:
    """Replace snapshot_download by one that fills local_dir with `populate`; returns its calls."""
    calls: list[dict[str, Any]] = []

    def snapshot_download(**kwargs: Any) -> str:
        calls.append(kwargs)
        populate(Path(kwargs["local_dir"]))
        return str(kwargs["local_dir"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def failing_snapshot(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def snapshot_download(**kwargs: Any) -> str:
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def http_error(cls: type[errors.HfHubHTTPError], status: int) -> errors.HfHubHTTPError:
    # Only the attributes HfHubHTTPError reads from a response.
    response = SimpleNamespace(status_code=status, headers={}, request=None)
    return cls(f"{status} Client Error", response=response)  # type: ignore[arg-type]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG")
    return buffer.getvalue()


def populate_holisafe(folder: Path) -> None:
    """The hub layout of etri-vilab/holisafe-bench, with the test fixture as its data."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "holisafe" / "holisafe_bench.json", folder / "holisafe_bench.json")
    for record in json.loads((folder / "holisafe_bench.json").read_text(encoding="utf-8")):
        image = folder / "images" / record["image"]
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(png_bytes())


def populate_mis_json(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("mis_easy.json", "mis_hard.json", "mis_real.json"):
        shutil.copy(FIXTURES / "mis" / name, folder / name)


def populate_mis_zipped(folder: Path) -> None:
    """MIS with its image folders in one archive (as some hub datasets ship them)."""
    populate_mis_json(folder)
    with zipfile.ZipFile(folder / "images.zip", "w") as archive:
        for split in ("easy", "hard", "real"):
            for record in json.loads((folder / f"mis_{split}.json").read_text(encoding="utf-8")):
                for field in ("image_path1", "image_path2"):
                    archive.writestr(record[field], png_bytes())


# --- success ------------------------------------------------------------------------------


def test_downloads_into_the_suite_folder_and_the_suite_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_snapshot(monkeypatch, populate_holisafe)

    folder = download_suite_data("holisafe", tmp_path)

    assert folder == tmp_path / "holisafe"
    assert calls == [
        {"repo_id": "etri-vilab/holisafe-bench", "repo_type": "dataset", "local_dir": tmp_path / "holisafe",
         "token": None}
    ]
    assert len(HoliSafeSuite().load(tmp_path)) == 14


def test_token_comes_from_hf_token_unless_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_snapshot(monkeypatch, populate_holisafe)
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")

    download_suite_data("holisafe", tmp_path)
    download_suite_data("holisafe", tmp_path, token="hf_explicit")

    assert [call["token"] for call in calls] == ["hf_from_env", "hf_explicit"]


def test_zipped_image_folders_are_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_snapshot(monkeypatch, populate_mis_zipped)

    folder = download_suite_data("mis", tmp_path)

    assert (folder / "easy_image" / "1" / "object1.png").is_file()
    assert (folder / "real_image" / "2" / "object2.png").is_file()


def test_an_archive_escaping_the_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def populate(folder: Path) -> None:
        populate_mis_json(folder)
        with zipfile.ZipFile(folder / "images.zip", "w") as archive:
            archive.writestr("../escaped.png", png_bytes())

    fake_snapshot(monkeypatch, populate)

    with pytest.raises(DataError, match="would unpack outside"):
        download_suite_data("mis", tmp_path)
    assert not (tmp_path / "escaped.png").exists()


def test_an_unexpected_hub_layout_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def parquet_only(folder: Path) -> None:
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "test-00000-of-00001.parquet").write_bytes(b"PAR1")

    fake_snapshot(monkeypatch, parquet_only)

    with pytest.raises(DataError) as error:
        download_suite_data("holisafe", tmp_path)
    message = str(error.value)
    assert "but it lacks holisafe_bench.json, images" in message
    assert "found: data" in message
    assert "docs/suites/holisafe.md" in message


# --- failures -----------------------------------------------------------------------------


def test_gated_dataset_says_to_accept_the_terms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_snapshot(monkeypatch, http_error(errors.GatedRepoError, 403))

    with pytest.raises(DataError) as error:
        download_suite_data("holisafe", tmp_path)
    message = str(error.value)
    assert "accept the terms at https://huggingface.co/datasets/etri-vilab/holisafe-bench" in message
    assert "set HF_TOKEN" in message


def test_unknown_repository_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_snapshot(monkeypatch, http_error(errors.RepositoryNotFoundError, 404))

    with pytest.raises(DataError, match="hub dataset Tuwhy/MIS_Test was not found") as error:
        download_suite_data("mis", tmp_path)
    assert "suites/mis.toml" in str(error.value)


@pytest.mark.parametrize(
    "failure",
    [
        errors.LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder"),
        errors.OfflineModeIsEnabled("offline"),
        ConnectionError("Name or service not known"),
        TimeoutError("timed out"),
    ],
    ids=lambda failure: type(failure).__name__,
)
def test_no_network_says_how_to_download_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    failing_snapshot(monkeypatch, failure)

    with pytest.raises(DataError) as error:
        download_suite_data("mis", tmp_path)
    message = str(error.value)
    assert message.startswith("no network to download Tuwhy/MIS_Test")
    assert "`hf download Tuwhy/MIS_Test --repo-type dataset --local-dir mis`" in message
    assert "huggingface-cli download" in message
    assert f"pass --safety-data {tmp_path}" in message
    assert str(tmp_path / "mis") in message


def test_hub_side_errors_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_snapshot(monkeypatch, http_error(errors.HfHubHTTPError, 500))

    with pytest.raises(DataError, match="failed on the hub side .*500 Client Error.*retry later"):
        download_suite_data("mis", tmp_path)


def test_unwritable_target_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_snapshot(monkeypatch, PermissionError(13, "Permission denied"))

    with pytest.raises(DataError, match=f"cannot write under {tmp_path / 'mis'}"):
        download_suite_data("mis", tmp_path)


def test_offline_mode_without_data_never_calls_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_snapshot(monkeypatch, AssertionError("the hub must not be called offline"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(DataError) as error:
        download_suite_data("holisafe", tmp_path)
    message = str(error.value)
    assert "HF_HUB_OFFLINE is set" in message
    assert "`hf download etri-vilab/holisafe-bench --repo-type dataset --local-dir holisafe`" in message
    assert f"--safety-data {tmp_path}" in message


def test_offline_mode_with_complete_data_returns_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_snapshot(monkeypatch, AssertionError("the hub must not be called offline"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    populate_holisafe(tmp_path / "holisafe")

    assert download_suite_data("holisafe", tmp_path) == tmp_path / "holisafe"


def test_offline_mode_with_partial_data_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_snapshot(monkeypatch, AssertionError("the hub must not be called offline"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    populate_mis_json(tmp_path / "mis")  # the JSON files without the image folders

    with pytest.raises(DataError, match="no complete copy in"):
        download_suite_data("mis", tmp_path)


def test_vscbench_is_not_on_the_hub(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        download_suite_data("vscbench", tmp_path)
    message = str(error.value)
    assert "Google Drive" in message
    assert f"{tmp_path}/vscbench/ holds vscbench_image_centric.xlsx" in message


@pytest.mark.parametrize("name", ["sample", "nonesuch"])
def test_suites_without_hub_data_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="accepts: holisafe, unsafeconcepts, mis"):
        download_suite_data(name, tmp_path)


# --- manifests ----------------------------------------------------------------------------


def test_manifests_name_the_hub_datasets() -> None:
    expected = {"holisafe": "etri-vilab/holisafe-bench", "mis": "Tuwhy/MIS_Test", "unsafeconcepts": "yiting/UnsafeConcepts"}
    assert set(expected) == set(HUB_SUITES)
    for name, repo_id in expected.items():
        assert suite_manifest(name)["hub"]["repo_id"] == hub_repo_id(name) == repo_id
    assert (holisafe.HUB_REPO_ID, mis.HUB_REPO_ID) == (expected["holisafe"], expected["mis"])


def test_manifests_describe_layout_counts_licence_and_citation() -> None:
    holisafe, mis = suite_manifest("holisafe"), suite_manifest("mis")

    assert expected_layout("holisafe") == ("holisafe_bench.json", "images")
    assert expected_layout("mis") == (
        "mis_easy.json", "mis_hard.json", "mis_real.json", "easy_image", "hard_image", "real_image",
    )
    assert holisafe["counts"]["total"] == 4031
    assert mis["counts"]["easy"] + mis["counts"]["hard"] + mis["counts"]["real"] == mis["counts"]["total"] == 2285
    for manifest in (holisafe, mis):
        assert manifest["licence"] and manifest["citation"].startswith("@")


def test_a_hub_copy_needing_extra_steps_quotes_the_manifest_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Like UnsafeConcepts, whose hub copy is parquet shards: the manifest says how to build the layout.
    manifest = {
        "hub": {"repo_id": "someone/parquet-only"},
        "layout": {"files": ["metadata.jsonl"], "folders": ["images"]},
        "download_hint": "Build metadata.jsonl and images/ as docs/suites/x.md shows.",
    }
    monkeypatch.setattr(download, "suite_manifest", lambda name: manifest)

    def parquet_only(folder: Path) -> None:
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")

    fake_snapshot(monkeypatch, parquet_only)

    with pytest.raises(DataError) as error:
        download_suite_data("unsafeconcepts", tmp_path)
    assert str(error.value) == (
        f"downloaded someone/parquet-only into {tmp_path / 'unsafeconcepts'}, but it lacks metadata.jsonl, images "
        "(found: data). Build metadata.jsonl and images/ as docs/suites/x.md shows."
    )
