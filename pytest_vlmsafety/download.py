"""`--safety-download`: fetch a hub-hosted suite's data into `<data_root>/<suite>/`.

HoliSafe-Bench, UnsafeConcepts and the MIS test set are Hugging Face hub datasets; their hub
repositories hold the benchmark's native layout, which the suites read as it is. VSCBench is
not on the hub (one archive on the authors' Google Drive), so it cannot be downloaded here.

Every failure becomes a DataError that says what to do: accept a gated dataset's terms and set
HF_TOKEN, or, without network (or with HF_HUB_OFFLINE set), download on a connected machine
and pass --safety-data.
"""

from __future__ import annotations

import importlib
import os
import zipfile
from pathlib import Path, PurePosixPath

from .errors import ConfigError, DataError
from .suites.registry import hub_suites, suite_manifest, suite_registration


def __getattr__(name: str) -> object:
    # `HUB_SUITES`: the suites whose data is on the hub, those whose registration names a hub
    # dataset (suites/registry.py; a built-in suite's id has one home, its manifest's `[hub] repo_id`).
    if name == "HUB_SUITES":
        return hub_suites()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_OFFLINE_VALUES = ("1", "on", "yes", "true")


def hub_repo_id(suite_name: str) -> str:
    """The hub dataset of a downloadable suite: a built-in suite's manifest's `[hub] repo_id`, else
    its registration's `hub_repo_id` (another package's suite)."""
    _refuse_non_hub_suite(suite_name, None)
    hub = suite_manifest(suite_name).get("hub")
    repo_id = hub.get("repo_id") if isinstance(hub, dict) else None
    if not isinstance(repo_id, str) or not repo_id:
        registration = suite_registration(suite_name)
        repo_id = registration.hub_repo_id if registration is not None else None
    if not repo_id:
        raise ConfigError(
            f"suite {suite_name!r} has no data to download; --safety-download accepts: {', '.join(hub_suites())}"
        )
    return repo_id


def expected_layout(suite_name: str) -> tuple[str, ...]:
    """The paths (relative to the suite folder) that a complete download holds, from the
    manifest's `[layout] files` and `[layout] folders`; () when the manifest names none."""
    layout = suite_manifest(suite_name).get("layout")
    if not isinstance(layout, dict):
        return ()
    paths: list[str] = []
    for key in ("files", "folders"):
        value = layout.get(key, [])
        if not isinstance(value, list) or not all(isinstance(entry, str) and entry for entry in value):
            raise DataError(f"suite manifest {suite_name}.toml: [layout] {key} must be a list of relative paths")
        paths.extend(value)
    return tuple(paths)


def offline_mode() -> bool:
    """True when HF_HUB_OFFLINE is set (read now, not when huggingface_hub was imported)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _OFFLINE_VALUES:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def download_suite_data(suite_name: str, data_root: Path, *, token: str | None = None) -> Path:
    """Download a hub-hosted suite into `<data_root>/<suite_name>/` and return that folder.

    Re-running is cheap: files already there are kept. `token` defaults to HF_TOKEN. Offline
    (HF_HUB_OFFLINE), a complete folder is returned as it is and a missing one is a DataError.
    """
    _refuse_non_hub_suite(suite_name, Path(data_root))
    repo_id = hub_repo_id(suite_name)
    target = Path(data_root) / suite_name
    expected = expected_layout(suite_name)
    if offline_mode():
        if _layout_complete(target, expected):
            return target
        raise DataError(_no_network_message(suite_name, repo_id, Path(data_root), "HF_HUB_OFFLINE is set"))
    token = token if token is not None else (os.environ.get("HF_TOKEN") or None)
    _fetch(suite_name, repo_id, Path(data_root), token)
    if not _layout_complete(target, expected):
        _unpack_archives(target)
    missing = [path for path in expected if not (target / path).exists()]
    if missing:
        found = ", ".join(sorted(p.name for p in target.iterdir())) or "nothing"
        # A suite whose hub copy is not its native layout explains the extra steps in its manifest.
        hint = suite_manifest(suite_name).get("download_hint")
        advice = hint if isinstance(hint, str) and hint else (
            f"The hub layout may have changed: see docs/suites/{suite_name}.md for the layout the suite reads."
        )
        raise DataError(
            f"downloaded {repo_id} into {target}, but it lacks {', '.join(missing)} (found: {found}). {advice}"
        )
    return target


def _refuse_non_hub_suite(suite_name: str, data_root: Path | None) -> None:
    if suite_name == "vscbench":
        root = str(data_root) if data_root is not None else "DIR"
        raise DataError(
            "suite 'vscbench' is not on the Hugging Face hub, so --safety-download cannot fetch it: its data is "
            "one archive on the authors' Google Drive, linked from the VSCBench repository README. Download it and "
            f"unpack it so that {root}/vscbench/ holds vscbench_image_centric.xlsx, vscbench_text_centric.xlsx, "
            f"vscbench_image_centric_images/ and vscbench_text_centric_images/, then pass --safety-data {root}."
        )


def _fetch(suite_name: str, repo_id: str, data_root: Path, token: str | None) -> None:
    """snapshot_download into the suite folder, with every failure turned into a DataError."""
    import huggingface_hub
    from huggingface_hub import errors

    target = data_root / suite_name
    try:
        target.mkdir(parents=True, exist_ok=True)
        huggingface_hub.snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=target, token=token)
    except errors.GatedRepoError:
        raise DataError(
            f"{repo_id} is gated: accept the terms at https://huggingface.co/datasets/{repo_id} (logged in), "
            f"then set HF_TOKEN to a read token of that account and run again."
        ) from None
    except errors.RepositoryNotFoundError:
        raise DataError(
            f"hub dataset {repo_id} was not found, or is private and the token cannot see it: check the id "
            f"(suites/{suite_name}.toml, [hub] repo_id) and set HF_TOKEN if the dataset needs access."
        ) from None
    except _no_network_errors() as exc:
        raise DataError(_no_network_message(suite_name, repo_id, data_root, type(exc).__name__)) from None
    except errors.HfHubHTTPError as exc:
        raise DataError(
            f"downloading {repo_id} failed on the hub side ({exc}); retry later, or download it on another "
            f"machine and pass --safety-data."
        ) from None
    except OSError as exc:
        raise DataError(f"downloading {repo_id}: cannot write under {target} ({exc})") from None


def _no_network_errors() -> tuple[type[BaseException], ...]:
    """Failures that mean the hub cannot be reached, across huggingface_hub versions (which
    raise through httpx2, httpx or requests)."""
    from huggingface_hub import errors

    types: list[type[BaseException]] = [errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled,
                                        ConnectionError, TimeoutError]
    incomplete = getattr(errors, "IncompleteSnapshotError", None)
    if incomplete is not None:
        types.append(incomplete)
    for module_name, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                               ("requests", ("ConnectionError", "Timeout"))):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        types.extend(getattr(module, name) for name in names if hasattr(module, name))
    return tuple(types)


def _no_network_message(suite_name: str, repo_id: str, data_root: Path, cause: str) -> str:
    return (
        f"no network to download {repo_id} ({cause}) and no complete copy in {data_root / suite_name}: "
        f"download it on a connected machine with `hf download {repo_id} --repo-type dataset "
        f"--local-dir {suite_name}` (`huggingface-cli download ...` on huggingface_hub < 1.0), copy that "
        f"folder to {data_root / suite_name}, and pass --safety-data {data_root}."
    )


def _layout_complete(target: Path, expected: tuple[str, ...]) -> bool:
    if not target.is_dir():
        return False
    if not expected:
        return any(target.iterdir())
    return all((target / path).exists() for path in expected)


def _unpack_archives(target: Path) -> None:
    """Unpack the top-level zip archives of a download (some hub datasets ship their image
    folders zipped), refusing members that would land outside `target`."""
    for archive in sorted(target.glob("*.zip")):
        try:
            with zipfile.ZipFile(archive) as bundle:
                for member in bundle.namelist():
                    parts = PurePosixPath(member.replace("\\", "/")).parts
                    if member.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                        raise DataError(f"{archive}: member {member!r} would unpack outside {target}; not unpacked")
                bundle.extractall(target)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{archive}: not a readable zip archive ({exc}); delete it and download again") from None


__all__ = [
    "download_suite_data",
    "expected_layout",
    "hub_repo_id",
    "offline_mode",
    "suite_manifest",
]
