"""Test harness: real vLLM (CPU build) for the openai backend, the vllm backend and the LLM judge.

- `VLLM_VENV` (default `.venv-vllm` in the checkout) is the environment `.ci/vllm_env.sh` builds;
  tests that need it skip with that reason when it is absent.
- `vllm_server` (a session fixture, loaded with `pytest_plugins = ["vllm_server"]`) serves the
  tiny model, in vLLM's checkpoint layout, on a free 127.0.0.1 port. xdist workers share one
  server: the first to need it starts it under a file lock, each user is counted, and the last
  to leave stops it, by the process-group id it was started with.
- `ScriptedProxy` is a loopback HTTP server under the test's control: it answers each request
  with the next scripted status (503, 429...), or forwards it to an upstream server; it can also
  stop listening for a while (connection refused) and come back on the same port.

Every wait is bounded; nothing listens or connects beyond 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("VLLM_VENV") or REPO / ".venv-vllm")
SERVED_NAME = "tiny"
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 420.0
STOP_TIMEOUT_S = 30.0
SKIP_REASON = (
    f"the vLLM CPU environment is not built at {VENV}: run `bash .ci/vllm_env.sh` "
    "(or point VLLM_VENV at one); CI builds it"
)


def vllm_python() -> Path | None:
    """The vLLM environment's interpreter, when that environment holds vllm."""
    python = VENV / "bin" / "python"
    has_vllm = any((VENV / "lib").glob("python3*/site-packages/vllm/__init__.py"))
    return python if python.is_file() and has_vllm else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def vllm_env(workdir: Path) -> dict[str, str]:
    """Environment for a vLLM process: small CPU KV cache, caches under `workdir`, offline."""
    env = dict(os.environ)
    env.update({
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB, whole numbers only
        "VLLM_CACHE_ROOT": str(workdir / "vllm-cache"),
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    })
    return env


def _get(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


@dataclass
class ServerInfo:
    pid: int
    port: int
    model: str

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"


def start_server(model: Path, workdir: Path, port: int | None = None) -> ServerInfo:
    """Start `vllm.entrypoints.openai.api_server` in its own process group and wait until it
    answers, at most STARTUP_TIMEOUT_S; on failure stop it and raise with its log's tail."""
    python = vllm_python()
    if python is None:
        raise RuntimeError(SKIP_REASON)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / f"vllm-server-{port}.log"
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", SERVED_NAME,
        "--host", LOOPBACK, "--port", str(port),
        "--dtype", "float32", "--max-model-len", "2048", "--seed", "0",
        # Compact JSON under structured output: a random model would otherwise emit whitespace
        # until its token limit.
        "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=vllm_env(workdir), cwd=workdir, start_new_session=True
        )
    info = ServerInfo(process.pid, port, str(model))
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _get(f"http://{LOOPBACK}:{port}/health", timeout=2) == 200:
            return info
        time.sleep(0.5)
    stop_server(info.pid)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    raise RuntimeError(f"vLLM server did not come up on port {port} within {STARTUP_TIMEOUT_S:.0f} s:\n{tail}")


def stop_server(pid: int) -> None:
    """SIGTERM to the server's process group (it leads its own session), SIGKILL after
    STOP_TIMEOUT_S. Only that group: the server, its engine core and workers."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
        except ChildProcessError:
            pass
        if not _group_alive(pid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: a server started by
    another xdist worker stays a zombie until that worker reaps it."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SharedServer:
    """One server for all xdist workers of a test run, counted by users in a state file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "vllm-server.json"
        self.lock = root / "vllm-server.lock"

    def acquire(self, model: Path) -> ServerInfo:
        with _locked(self.lock):
            state = json.loads(self.state.read_text()) if self.state.exists() else None
            if state and _group_alive(state["pid"]) and _get(f"http://{LOOPBACK}:{state['port']}/health", 5) == 200:
                state["users"] += 1
            else:
                if state:
                    stop_server(state["pid"])
                info = start_server(model, self.root / "vllm-server")
                state = {"pid": info.pid, "port": info.port, "model": info.model, "users": 1}
            self.state.write_text(json.dumps(state))
            return ServerInfo(state["pid"], state["port"], state["model"])

    def release(self) -> None:
        with _locked(self.lock):
            if not self.state.exists():
                return
            state = json.loads(self.state.read_text())
            state["users"] -= 1
            if state["users"] <= 0:
                stop_server(state["pid"])
                self.state.unlink()
            else:
                self.state.write_text(json.dumps(state))


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shared by the xdist workers of this test run (the parent of their basetemps)."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if root.name.startswith("popen-gw") else root


@pytest.fixture(scope="session")
def tiny_vllm_model(tiny_model: Path) -> Path:
    """The conftest's tiny model in vLLM's checkpoint layout (same weights)."""
    from pytest_vlmsafety.backends.vllm_engine import vllm_compatible_copy

    return vllm_compatible_copy(tiny_model)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory, tiny_vllm_model: Path) -> Iterator[ServerInfo]:
    if vllm_python() is None:
        pytest.skip(SKIP_REASON)
    shared = SharedServer(shared_root(tmp_path_factory))
    info = shared.acquire(tiny_vllm_model)
    try:
        yield info
    finally:
        shared.release()


# --- a scripted loopback proxy ------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedProxy:
    """Answers chat request N with `script[N]` while the script lasts: an int is that HTTP status
    (with an OpenAI-style error body; 429 and 503 carry `Retry-After: 0`), a (status, body)
    pair that status and JSON body; "forward" (and anything after the script) goes upstream.
    With no upstream, an exhausted script answers 503."""

    upstream: str | None = None  # e.g. http://127.0.0.1:8000
    script: deque = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    def start(self) -> "ScriptedProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                proxy._handle(self, b"")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                proxy._handle(self, self.rfile.read(length))

        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def down_for(self, seconds: float) -> threading.Thread:
        """Stop listening now (connections are refused) and listen again on the same port after
        `seconds`, from a background thread (returned, to join)."""
        self.stop()

        def come_back() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=come_back, daemon=True)
        thread.start()
        return thread

    def chat_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith("/chat/completions")]

    def _next(self, path: str) -> Any:
        """The script applies to chat requests; `GET /models` is forwarded, or answered with the
        tiny model's name."""
        with self._lock:
            if path.endswith("/models"):
                if self.upstream:
                    return "forward"
                return (200, {"object": "list", "data": [{"id": SERVED_NAME, "object": "model"}]})
            return self.script.popleft() if self.script else ("forward" if self.upstream else 503)

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self._lock:
            # Header names in one spelling ("Authorization"): HTTP ignores their case, and the
            # openai SDK (httpx) sends them in lower case.
            headers = {name.title(): value for name, value in handler.headers.items()}
            self.seen.append(Seen(handler.command, handler.path, headers, body))
        action = self._next(handler.path)
        if action == "forward" and self.upstream:
            status, payload, content_type = self._forward(handler, body)
            self._reply(handler, status, payload, content_type)
            return
        if action == "forward":
            action = 503
        status, data = action if isinstance(action, tuple) else (action, {"error": {"message": f"scripted {action}"}})
        headers = {"Retry-After": "0"} if status in (429, 503) else {}
        self._reply(handler, status, json.dumps(data).encode(), "application/json", headers)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, str]:
        request = urllib.request.Request(
            f"{self.upstream}{handler.path}",
            data=body if handler.command == "POST" else None,
            headers={"Content-Type": "application/json"},
            method=handler.command,
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read(), response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), "application/json"

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)


@pytest.fixture
def scripted_proxy() -> Iterator[ScriptedProxy]:
    proxy = ScriptedProxy().start()
    try:
        yield proxy
    finally:
        proxy.stop()
