"""A content-addressed store of generations and judgements, shared by every process of a run.

SQLite in WAL mode: xdist workers read and write the same file concurrently. Values are JSON
text, never pickle, so a cache file from elsewhere cannot run code. A generation's key covers
everything that decides the output: the model (hub revision or a hash of the weights files), the
processor and chat template (inside that hash for a local folder, or pinned by the revision),
the generation parameters, the prompt and the bytes of every image.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends.base import Sampling

CACHE_FILENAME = "vlmsafety-cache.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, verdict TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS file_hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
"""


def sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Cache:
    """The SQLite file. One connection per process; every write is its own short transaction."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILENAME
        self.connection = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.executescript(_SCHEMA)
        self.connection.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        self.connection.close()

    def _get(self, table: str, column: str, keys: Sequence[str]) -> list[str | None]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(f"SELECT key, {column} FROM {table} WHERE key IN ({marks})", chunk)
            found.update(rows.fetchall())
        return [found.get(key) for key in keys]

    def _put(self, table: str, column: str, entries: Mapping[str, str]) -> None:
        now = time.time()
        with self.connection:
            self.connection.execute("BEGIN IMMEDIATE")
            self.connection.executemany(
                f"INSERT OR REPLACE INTO {table} (key, {column}, created) VALUES (?, ?, ?)",
                [(key, value, now) for key, value in entries.items()],
            )

    def get_generations(self, keys: Sequence[str]) -> list[str | None]:
        values = self._get("generations", "response", keys)
        return [None if v is None else json.loads(v) for v in values]

    def put_generations(self, entries: Mapping[str, str]) -> None:
        self._put("generations", "response", {k: json.dumps(v, ensure_ascii=False) for k, v in entries.items()})

    def get_judgements(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        values = self._get("judgements", "verdict", keys)
        return [None if v is None else json.loads(v) for v in values]

    def put_judgements(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        self._put("judgements", "verdict", {k: json.dumps(v, ensure_ascii=False) for k, v in entries.items()})

    def file_sha256(self, path: Path) -> str:
        """The hash of a file, remembered by size and mtime so big weights are read once."""
        stat = path.stat()
        row = self.connection.execute(
            "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
            (str(path), stat.st_size, stat.st_mtime_ns),
        ).fetchone()
        if row:
            return str(row[0])
        digest = sha256_file(path)
        with self.connection:
            self.connection.execute(
                "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                (str(path), stat.st_size, stat.st_mtime_ns, digest),
            )
        return digest

    def info(self) -> dict[str, Any]:
        def count(table: str) -> int:
            return int(self.connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

        size = sum(p.stat().st_size for p in self.path.parent.glob(CACHE_FILENAME + "*") if p.is_file())
        return {
            "path": str(self.path),
            "generations": count("generations"),
            "judgements": count("judgements"),
            "bytes": size,
        }

    def clear(self) -> None:
        with self.connection:
            self.connection.execute("DELETE FROM generations")
            self.connection.execute("DELETE FROM judgements")
        self.connection.execute("VACUUM")


# Files of a model folder that decide its outputs: weights, configs, tokenizer, chat template.
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt", ".py", ".tiktoken")


def folder_fingerprint(cache: Cache, folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _MODEL_FILE_SUFFIXES)
    return sha256_json([(str(p.relative_to(folder)), cache.file_sha256(p)) for p in files])


def hub_revision(model_id: str, revision: str | None) -> str | None:
    """The commit a hub id resolves to in the local hub cache, without network."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of transformers
        return None
    ref = revision or "main"
    if len(ref) == 40 and all(c in "0123456789abcdef" for c in ref):
        return ref
    refs = Path(constants.HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}" / "refs" / ref
    return refs.read_text().strip() if refs.is_file() else None


@dataclass(frozen=True)
class ModelFingerprint:
    """What identifies the model's outputs: `value` goes into every generation key."""

    value: str
    revision: str | None = None
    weights_hash: str | None = None


def replay_fingerprint(cache: Cache, path: Path) -> ModelFingerprint:
    """What identifies a replay file's responses: its content."""
    digest = cache.file_sha256(path)
    return ModelFingerprint(f"replay:{digest}", weights_hash=digest)


def fingerprint_model(cache: Cache, target: str, revision: str | None) -> ModelFingerprint:
    """What identifies a model's weights: a folder's files, or a hub id at its resolved commit."""
    path = Path(target)
    if path.is_dir():
        digest = folder_fingerprint(cache, path)
        return ModelFingerprint(f"folder:{digest}", weights_hash=digest)
    commit = hub_revision(target, revision)
    # Without a resolvable commit the moving ref is the best we have; `main` may move under us,
    # so say so in the key rather than pretend to pin it.
    return ModelFingerprint(f"hub:{target}@{commit or revision or 'main'}", revision=commit or revision)


class GenerationStore:
    """Generations of one model under one set of generation parameters, keyed by content."""

    def __init__(self, cache: Cache, fingerprint: ModelFingerprint, params: Mapping[str, Any]) -> None:
        self.cache = cache
        self.fingerprint = fingerprint
        self.params = dict(params)

    def key(
        self,
        prompt: str,
        images: Iterable[Path],
        max_new_tokens: int,
        system: str | None = None,
        sampling: Sampling | None = None,
        sample_index: int = 0,
        item: tuple[str, str] | None = None,
    ) -> str:
        # Only a request with a system prompt, or sampled, has those fields, so every older
        # (greedy, system-less) key stays valid.
        extra: dict[str, Any] = {} if system is None else {"system": system}
        if sampling is not None:
            extra["sampling"] = sampling.key_fields(sample_index)
            # A sampled response is a draw of its item (suite, id): each item draws from a seed of
            # its own (`base.request_seed`), so two items that share a prompt must not share a
            # cached draw, or a cached run would answer differently from an uncached one.
            if item is not None:
                extra["sampling"]["item"] = list(item)
        return sha256_json({
            **extra,
            "model": self.fingerprint.value,
            "params": self.params,
            "max_new_tokens": max_new_tokens,
            "prompt": prompt,
            # Image bytes, not paths: a moved dataset still hits, an edited image misses.
            "images": [sha256_file(Path(p)) for p in images],
        })

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return self.cache.get_generations(keys)

    def put_many(self, entries: Mapping[str, str]) -> None:
        self.cache.put_generations(entries)

