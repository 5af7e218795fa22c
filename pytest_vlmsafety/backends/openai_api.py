"""`--vlm=openai:<model>`: any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI,
hosted APIs).

The HTTP client is the standard library's (`urllib.request`): one POST per item, with no new
dependency. Requests run on a bounded thread pool (`--vlm-concurrency`); the server batches
them itself. A request's cost is the model's generation time (seconds), so a new connection per
request (no keep-alive) is not what limits throughput.

Failures, in three kinds:
- the run cannot work at all (nothing listens at the URL, a wrong API key, an unknown model or
  endpoint): one `VlmSafetyError` (a `ConfigError` at load), not one error per item. Loading
  probes `GET /models` once; a 401/403/404 later stops the remaining requests at once;
- transient (HTTP 408/409/425/429/5xx, timeouts, dropped or refused connections): retried with
  exponential backoff and jitter, honouring `Retry-After`, bounded by `RetryPolicy` in attempts
  (`--vlm-retries`) and in seconds per request (`--vlm-timeout`). When several requests in a row
  exhaust their retries the server is taken as down for the rest of the process: the rest of the
  call is cancelled, `generate` raises, and every later call raises at once;
- the item's own fault (another 4xx, e.g. a prompt longer than the context): that item fails
  with the server's message, the others go on.

The API key comes from the environment only (`VLMSAFETY_API_KEY`, then `OPENAI_API_KEY`; a judge
may use `VLMSAFETY_JUDGE_API_KEY`). It is sent in the Authorization header and nowhere else: not
in `describe()` (the results file), not in a cache key, not in a message or a log line (server
messages are scrubbed of it).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..errors import ConfigError, ItemError, VlmSafetyError
from .base import DEFAULT_CONCURRENCY, Backend, Generation, GenerationRequest, ProgressCallback, request_seed
from .messages import openai_messages

log = logging.getLogger("pytest_vlmsafety")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
API_KEY_VARIABLES: tuple[str, ...] = ("VLMSAFETY_API_KEY", "OPENAI_API_KEY")
JUDGE_API_KEY_VARIABLES: tuple[str, ...] = ("VLMSAFETY_JUDGE_API_KEY", *API_KEY_VARIABLES)
BASE_URL_VARIABLE = "OPENAI_BASE_URL"

_RETRY_STATUSES = frozenset({408, 409, 425, 429})
_FATAL_STATUSES = frozenset({401, 403, 404})
# Request fields some servers reject; dropped for the rest of the run when a 400 names them.
_OPTIONAL_FIELDS: tuple[str, ...] = ("response_format", "seed")
_MESSAGE_LIMIT = 400


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request before giving up on it."""

    max_attempts: int = 6
    initial_delay_s: float = 1.0
    max_delay_s: float = 30.0
    # Per request, counted from its first attempt: no request waits longer in retries.
    max_total_s: float = 300.0
    # A single attempt (connect and each read): a long generation on a loaded server takes time.
    request_timeout_s: float = 600.0
    # This many requests in a row exhausting their retries means the server is down.
    max_consecutive_exhausted: int = 3
    connect_probe_timeout_s: float = 10.0

    @classmethod
    def from_options(cls, retries: int, timeout_s: float) -> RetryPolicy:
        """The policy of --vlm-retries and --vlm-timeout: a retry never waits past what one attempt may take."""
        return cls(
            max_attempts=retries + 1,
            request_timeout_s=timeout_s,
            max_total_s=min(cls.max_total_s, timeout_s),
            connect_probe_timeout_s=min(cls.connect_probe_timeout_s, timeout_s),
        )

    def delay(self, attempt: int, retry_after_s: float | None, jitter: float) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based). `jitter` in [0, 1)
        spreads the retries of many workers; a server's Retry-After is a floor."""
        backoff = min(self.max_delay_s, self.initial_delay_s * 2.0 ** (attempt - 1))
        backoff *= 0.5 + 0.5 * jitter
        if retry_after_s is not None:
            backoff = max(backoff, min(retry_after_s, self.max_delay_s))
        return float(backoff)


def _asks_for_seed(request: GenerationRequest) -> bool:
    """The request's seed comes from --vlm-seed (a seeded sample), not our greedy default of 0."""
    return request_seed(request) is not None


def resolve_base_url(explicit: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """`explicit` (from the spec or --vlm-base-url), else $OPENAI_BASE_URL, else OpenAI's URL."""
    url = (explicit or environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL).strip().rstrip("/")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"base URL {url!r} is not an http(s) URL like http://127.0.0.1:8000/v1")
    return url


def public_url(url: str) -> str:
    """The URL without credentials or query string: safe for the results file and messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def api_key_from_env(
    variables: Sequence[str], environ: Mapping[str, str] = os.environ
) -> tuple[str | None, str | None]:
    """(key, the variable it came from), the first variable that is set and not empty."""
    for name in variables:
        value = environ.get(name, "").strip()
        if value:
            return value, name
    return None, None


def server_fingerprint(model: str, base_url: str) -> str:
    """What identifies a served model's outputs for the cache: the name and where it is served.
    The key is not part of it (it does not change the outputs and must not be stored)."""
    return f"openai:{model}@{public_url(base_url)}"


class _Fatal(Exception):
    """The server says this run cannot work (auth, unknown model or endpoint)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    """Worth another try. `status` is the HTTP status, None when no answer came at all."""

    def __init__(self, message: str, retry_after_s: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.status = status


class _ItemFailure(Exception):
    """The server refused this one request (a 4xx other than auth/not-found/rate limit)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Cancelled(Exception):
    pass


@dataclass
class _RunState:
    """Shared by the threads of one `generate` call."""

    stop: threading.Event
    lock: threading.Lock
    consecutive_exhausted: int = 0
    failure: str | None = None  # why the remaining requests were cancelled
    # The server refused this run for good (auth, unknown model); else it seemed down.
    permanent: bool = False

    def trip(self, message: str, *, permanent: bool) -> None:
        with self.lock:
            if self.failure is None:
                self.failure, self.permanent = message, permanent
        self.stop.set()


class OpenAIBackend(Backend):
    name = "openai"
    # A system message before the user's; a server whose chat template rejects it answers each
    # request with its own 400, which names the cause.
    supports_system_prompt = True

    def __init__(
        self,
        model: str,
        *,
        spec: str,
        base_url: str,
        concurrency: int = DEFAULT_CONCURRENCY,
        api_key_variables: Sequence[str] = API_KEY_VARIABLES,
        option: str = "--vlm",
        policy: RetryPolicy | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"--vlm-concurrency must be at least 1, got {concurrency}")
        self.model = model
        self.spec = spec
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.option = option
        self.policy = policy or RetryPolicy()
        self.api_key_variables = tuple(api_key_variables)
        self._api_key, self.api_key_variable = api_key_from_env(self.api_key_variables, environ)
        self._dropped_fields: set[str] = set()
        # Why the last call was cancelled; when permanent, every later call fails with it at once.
        self._unavailable: str | None = None
        self._unavailable_for_good = False
        self._random = random.Random()
        started = time.perf_counter()
        self.served_models = self._probe()
        self.load_seconds = time.perf_counter() - started

    # -- identity --------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "id": self.model,
            "revision": None,
            "backend": self.name,
            "base_url": public_url(self.base_url),
            "api_key": f"from ${self.api_key_variable}" if self.api_key_variable else None,
            "concurrency": self.concurrency,
            "dtype": None,
            "device": "server",
            "noise": False,
            "load_s": round(self.load_seconds, 3),
        }

    def fingerprint(self) -> str:
        return server_fingerprint(self.model, self.base_url)

    # -- generation ------------------------------------------------------------------------------

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None = None,
        batch_size: int | None = None,
    ) -> list[Generation]:
        """`batch_size` plays no part: the server batches what is in flight (--vlm-concurrency)."""
        return self._generate_all(requests, progress, response_format=None)

    def generate_structured(
        self,
        requests: Sequence[GenerationRequest],
        schema: Mapping[str, Any],
        progress: ProgressCallback | None = None,
    ) -> list[Generation]:
        """Like `generate`, asking for JSON matching `schema` (`response_format` json_schema).
        A server that rejects the field is asked again without it; the caller parses text."""
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": dict(schema), "strict": True},
        }
        return self._generate_all(requests, progress, response_format=response_format)

    def _generate_all(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None,
        response_format: Mapping[str, Any] | None,
    ) -> list[Generation]:
        if self._unavailable:
            # Once found failing, the server is failing for the rest of this process: every later
            # shard's items are errors at once, instead of each shard probing and retrying from
            # scratch (three shards took 82 s; a hung server 600 s of silence per shard). The
            # finished generations are cached, so a rerun once the server is fixed does the rest.
            raise VlmSafetyError(self._unavailable)
        results: list[Generation] = [Generation.failed("not generated")] * len(requests)
        state = _RunState(stop=threading.Event(), lock=threading.Lock())
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="vlmsafety-openai")
        try:
            pending: dict[Future[Generation], int] = {}
            queue = iter(range(len(requests)))
            self._fill(pool, pending, queue, requests, state, response_format)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                finished = []
                for future in done:
                    index = pending.pop(future)
                    try:
                        results[index] = future.result()
                    except _Cancelled:
                        continue
                    finished.append((index, results[index]))
                if progress and finished:
                    progress(finished)
                if not state.stop.is_set():
                    self._fill(pool, pending, queue, requests, state, response_format)
        finally:
            state.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
        if state.failure:
            self._unavailable, self._unavailable_for_good = state.failure, state.permanent
            raise VlmSafetyError(state.failure)
        return results

    def _fill(
        self,
        pool: ThreadPoolExecutor,
        pending: dict[Future[Generation], int],
        queue: Any,
        requests: Sequence[GenerationRequest],
        state: _RunState,
        response_format: Mapping[str, Any] | None,
    ) -> None:
        """Keep at most `concurrency` requests in flight (so a cancelled run leaves no backlog)."""
        while len(pending) < self.concurrency:
            index = next(queue, None)
            if index is None:
                return
            pending[pool.submit(self._one, requests[index], state, response_format)] = index

    def _one(
        self, request: GenerationRequest, state: _RunState, response_format: Mapping[str, Any] | None
    ) -> Generation:
        if state.stop.is_set():
            raise _Cancelled()
        try:
            body = self._body(request, response_format)
        except ItemError as exc:
            return Generation.failed(str(exc))
        started = time.monotonic()
        attempt = 0
        last_problem = ""
        while True:
            attempt += 1
            try:
                reply = self._post(body)
            except _Fatal as exc:
                state.trip(str(exc), permanent=True)
                raise _Cancelled() from None
            except _ItemFailure as exc:
                with state.lock:
                    state.consecutive_exhausted = 0
                if _asks_for_seed(request) and self._names_field("seed", str(exc), body):
                    # --vlm-seed asked for reproducible samples: without the seed they are not, and
                    # the run facts would say seeded. Stop the run rather than send it unseeded.
                    state.trip(
                        f"the server at {public_url(self.base_url)} rejects the request field 'seed' ({exc}), so "
                        "--vlm-seed cannot be honoured: leave --vlm-seed out to sample unseeded, or use a server "
                        "that takes seeds",
                        permanent=True,
                    )
                    raise _Cancelled() from None
                dropped = self._field_to_drop(str(exc), body)
                if dropped and attempt < self.policy.max_attempts:
                    body = {k: v for k, v in body.items() if k != dropped}
                    continue
                return Generation.failed(f"HTTP {exc.status} from the server: {exc}")
            except _Transient as exc:
                last_problem = str(exc)
                delay = self.policy.delay(attempt, exc.retry_after_s, self._random.random())
                elapsed = time.monotonic() - started
                if attempt >= self.policy.max_attempts or elapsed + delay > self.policy.max_total_s:
                    return self._exhausted(state, attempt, elapsed, last_problem)
                log.warning(
                    "vlmsafety: %s from %s; retry %d/%d in %.1f s",
                    last_problem, public_url(self.base_url), attempt, self.policy.max_attempts - 1, delay,
                )
                if state.stop.wait(delay):
                    raise _Cancelled() from None
                continue
            with state.lock:
                state.consecutive_exhausted = 0
            return self._generation_from(reply)

    def _exhausted(self, state: _RunState, attempts: int, elapsed: float, problem: str) -> Generation:
        message = f"gave up after {attempts} attempts over {elapsed:.0f} s: {problem}"
        with state.lock:
            state.consecutive_exhausted += 1
            down = state.consecutive_exhausted >= self.policy.max_consecutive_exhausted
        if down:
            state.trip(
                f"the server at {public_url(self.base_url)} is failing: {state.consecutive_exhausted} requests in a "
                f"row {message}. Stopped the remaining requests; check the server and run again (finished "
                "generations are cached).",
                permanent=False,
            )
        return Generation.failed(message)

    @staticmethod
    def _names_field(field: str, message: str, body: Mapping[str, Any]) -> bool:
        """Whether a 400 `message` rejects the request field `field` of `body`."""
        lowered = message.lower()
        return field in body and (field in lowered or (field == "response_format" and "json_schema" in lowered))

    def _field_to_drop(self, message: str, body: Mapping[str, Any]) -> str | None:
        for field in _OPTIONAL_FIELDS:
            if self._names_field(field, message, body):
                if field not in self._dropped_fields:
                    self._dropped_fields.add(field)
                    log.warning("vlmsafety: the server rejects %r; sending requests without it", field)
                return field
        return None

    def _body(self, request: GenerationRequest, response_format: Mapping[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(_in_official_order(request)),
            "temperature": 0,
            "max_tokens": request.max_new_tokens,
            "seed": 0,
        }
        if request.sampling is not None:
            # One request per sample (no `n`): each sample has its own seed and cache entry.
            body.update(temperature=request.sampling.temperature, top_p=request.sampling.top_p)
            seed = request_seed(request)
            if seed is None:
                del body["seed"]  # a fixed seed would make an unseeded run's samples identical
            else:
                body["seed"] = seed
        if response_format is not None:
            body["response_format"] = dict(response_format)
        return {k: v for k, v in body.items() if k not in self._dropped_fields}

    def _generation_from(self, reply: Mapping[str, Any]) -> Generation:
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            return Generation.failed(f"the server's reply has no choices[0].message: {self._scrub(str(reply))}")
        if not isinstance(text, str):
            refusal = choice["message"].get("refusal")
            if isinstance(refusal, str):  # OpenAI's structured refusal field
                text = refusal
            else:
                return Generation.failed(f"the server's reply has no text content: {self._scrub(str(choice))}")
        usage = reply.get("usage") or {}
        tokens = usage.get("completion_tokens") if isinstance(usage, Mapping) else None
        return Generation(text=text.strip(), generated_tokens=tokens if isinstance(tokens, int) else 0)

    # -- HTTP ------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": f"pytest-vlmsafety/{__version__}"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _post(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=data, headers=self._headers(), method="POST"
        )
        return self._send(request, self.policy.request_timeout_s)

    def _send(self, request: urllib.request.Request, timeout: float) -> Mapping[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._classify_status(exc) from None
        except TimeoutError:
            raise _Transient(f"no answer within {timeout:.0f} s") from None
        except urllib.error.URLError as exc:
            raise _Transient(f"cannot connect ({exc.reason})") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Transient(f"connection failed ({type(exc).__name__}: {exc})") from None
        try:
            reply = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Transient(f"the reply is not JSON: {self._scrub(raw[:200].decode('utf-8', 'replace'))!r}") from None
        if not isinstance(reply, Mapping):
            raise _Transient("the reply is not a JSON object")
        return reply

    def _classify_status(self, error: urllib.error.HTTPError) -> Exception:
        status = error.code
        detail = self._server_message(error)
        where = public_url(self.base_url)
        if status in (401, 403):
            source = f"${self.api_key_variable}" if self.api_key_variable else "no API key set"
            return _Fatal(
                f"{self.option}={self.spec}: the server at {where} refused the credentials (HTTP {status}; "
                f"{source}). Set {' or '.join(self.api_key_variables)} in the environment.",
                status,
            )
        if status == 404:
            served = f" It serves: {', '.join(self.served_models[:10])}." if self.served_models else ""
            return _Fatal(
                f"{self.option}={self.spec}: HTTP 404 from {where}/chat/completions: {detail.rstrip('.')}.{served} "
                "Check the "
                "model name and the base URL (vLLM and most servers want it to end in /v1).",
                status,
            )
        if status in _RETRY_STATUSES or status >= 500:
            return _Transient(f"HTTP {status} ({detail})", _retry_after(error), status)
        return _ItemFailure(detail, status)

    def _server_message(self, error: urllib.error.HTTPError) -> str:
        try:
            raw = error.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            raw = ""
        message = raw
        try:
            parsed = json.loads(raw)
            inner = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
            message = inner.get("message", raw) if isinstance(inner, dict) else str(inner)
        except (json.JSONDecodeError, AttributeError):
            pass
        message = " ".join(str(message).split()) or (error.reason or "no message")
        return self._scrub(message[:_MESSAGE_LIMIT])

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "[API key]") if self._api_key else text

    def _probe(self) -> list[str]:
        """`GET /models`: is anything there, and are we let in? Names the served models for
        later messages. A server without the endpoint (404), or a busy one (429, 5xx), is not an
        error here."""
        where = public_url(self.base_url)
        request = urllib.request.Request(f"{self.base_url}/models", headers=self._headers(), method="GET")
        try:
            reply = self._send(request, self.policy.connect_probe_timeout_s)
        except _Fatal as exc:
            if exc.status == 404:
                return []
            raise ConfigError(str(exc)) from None
        except _Transient as exc:
            if exc.status is not None:
                return []  # it is there, only busy: generation retries on its own terms
            raise ConfigError(
                f"{self.option}={self.spec}: no OpenAI-compatible server answers at {where}: {exc}. Start it, or "
                f"point {'--vlm-base-url or ' if self.option == '--vlm' else ''}${BASE_URL_VARIABLE} at it."
            ) from None
        except _ItemFailure:
            return []
        data = reply.get("data")
        if not isinstance(data, list):
            return []
        return [str(entry["id"]) for entry in data if isinstance(entry, Mapping) and "id" in entry]


def _in_official_order(request: GenerationRequest) -> GenerationRequest:
    """The request with the text first where the official code of its suite sends an API model
    the text before the image (VSCBench's GPT-4o, UnsafeConcepts' GPT-4V: `Suite.api_text_first`)."""
    from ..suites.base import api_text_first

    if request.text_first or not request.images or not api_text_first(request.suite):
        return request
    return dataclasses.replace(request, text_first=True)


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for APIs, and the backoff covers it
