"""`--vlm=openai:<model>`: any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI,
hosted APIs).

The HTTP client is the official `openai` SDK (the `openai` extra): one `OpenAI` client per
backend, whose connection pool (httpx, keep-alive) every request shares; it builds the requests,
applies the per-attempt timeout (`--vlm-timeout`), parses the replies and names each failure by
its type (status error, timeout, connection error). Requests run on a bounded thread pool
(`--vlm-concurrency`); the server batches them itself.

Measured with `benchmarks/openai_client.py` (a fake server answering each request in 20 ms, HTTP/1.1
keep-alive; this 2-core machine under a load of about 4.5; best of 3 fresh interpreters), the
standard-library client this module had before (commit bc26927) and the SDK:

    client       import s   first load s   req/s c=1   req/s c=16   client CPU ms/request
    urllib       0.14       0.004          43.9        548          0.62
    openai SDK   0.13       1.32           40.7        414          2.20

`import s` is this module, which parsing an `openai:` spec imports at start-up (the SDK is not
imported then: start-up only checks that it is installed); `first load s` is the first backend
of a process (importing the SDK, building the client, the `GET /models` probe). The SDK costs
about 1.6 ms more CPU per request and 1.3 s once per process. Neither matters next to a model:
a served VLM takes a fraction of a second to seconds per answer, so 16 requests in flight are
tens of requests a second at most, a few percent of a core; what the SDK brings (pooled
keep-alive connections, typed errors, request and response types kept in step with the API)
does. Only a server answering in ~20 ms at concurrency 16 makes the client's CPU the limit
(414 vs 548 req/s).

The SDK's own retries are off (`max_retries=0`); this module keeps its own loop because the SDK's
lacks what a run of thousands of requests needs: its backoff sleeps (`time.sleep`, up to 8 s, or
a Retry-After of up to 2 min) cannot be interrupted, so a run stopped by a wrong key or a down
server would wait out every in-flight request's retries; its timeout is per attempt, so nothing
bounds a request's attempts together in seconds; its attempts are invisible to the caller, so
it cannot count requests that exhaust their retries to find a server down, nor log each retry;
and it does not retry 425. Also ours: dropping a request field a server rejects, stopping every
request on 401/403/404, refusing a seeded run when the server rejects `seed` (below), and
scrubbing the key from server messages.

Failures, in three kinds:
- the run cannot work at all (nothing listens at the URL, a wrong API key, an unknown model or
  endpoint): one `VlmSafetyError` (a `ConfigError` at load), not one error per item. Loading
  probes `GET /models` once; a 401/403/404 later stops the remaining requests at once;
- transient (HTTP 408/409/425/429/5xx, timeouts, dropped or refused connections, a reply that is
  not JSON): retried with exponential backoff and jitter, honouring `Retry-After`, bounded by
  `RetryPolicy` in attempts (`--vlm-retries`) and in seconds per request (`--vlm-timeout`). When
  several requests in a row exhaust their retries the server is taken as down for the rest of
  the process: the rest of the call is cancelled, `generate` raises, and every later call raises
  at once;
- the item's own fault (another 4xx, e.g. a prompt longer than the context): that item fails
  with the server's message, the others go on. A 400 that names an optional field (`seed`,
  `response_format`) drops that field for the rest of the run and sends the request again,
  except the `seed` of a `--vlm-seed` run, which stops the run.

The API key comes from the environment only (`VLMSAFETY_API_KEY`, then `OPENAI_API_KEY`; a judge
may use `VLMSAFETY_JUDGE_API_KEY`). It is given to the SDK, which sends it in the Authorization
header and nowhere else (its debug log redacts that header); it is not in `describe()` (the
results file), not in a cache key, not in a message or a log line (server messages are scrubbed
of it). Without a key no Authorization header is sent, as a local server expects.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ConfigError, ItemError, VlmSafetyError
from .base import DEFAULT_CONCURRENCY, Backend, Generation, GenerationRequest, ProgressCallback, request_seed
from .messages import openai_messages

if TYPE_CHECKING:
    from openai import OpenAI

log = logging.getLogger("pytest_vlmsafety")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
API_KEY_VARIABLES: tuple[str, ...] = ("VLMSAFETY_API_KEY", "OPENAI_API_KEY")
JUDGE_API_KEY_VARIABLES: tuple[str, ...] = ("VLMSAFETY_JUDGE_API_KEY", *API_KEY_VARIABLES)
BASE_URL_VARIABLE = "OPENAI_BASE_URL"
INSTALL_HINT = "pip install 'pytest-vlmsafety[openai]'"

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


def require_openai(option: str, spec: str) -> None:
    """At start-up: raise ConfigError naming `option` when the openai SDK is not installed. It
    only looks for the package (importing it costs what the backend's load pays later)."""
    if importlib.util.find_spec("openai") is None:
        raise ConfigError(_missing_sdk(option, spec))


def _missing_sdk(option: str, spec: str) -> str:
    return f"{option}={spec}: the openai: backend needs the openai package, not installed here: {INSTALL_HINT}"


def _sdk_client(base_url: str, api_key: str | None, policy: RetryPolicy, *, option: str, spec: str) -> OpenAI:
    """The backend's one client: its connection pool serves every request and thread. Retries
    are ours (the module's docstring says why)."""
    try:
        from openai import OpenAI
    except ImportError:
        raise ConfigError(_missing_sdk(option, spec)) from None
    return OpenAI(
        # Without a key each request omits the Authorization header (`_request_headers`): the
        # SDK refuses to build a client without one, and the placeholder is never sent.
        api_key=api_key or "no-key",
        base_url=base_url,
        timeout=policy.request_timeout_s,
        max_retries=0,
        default_headers={"User-Agent": f"pytest-vlmsafety/{__version__}"},
    )


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
        self._client = _sdk_client(self.base_url, self._api_key, self.policy, option=option, spec=spec)
        self._request_headers = _request_headers(self._api_key)
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
            "messages": openai_messages(request),
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

    def _generation_from(self, completion: object) -> Generation:
        """The text of a reply the SDK parsed leniently: a server may leave out or garble any
        field, so each is looked up rather than trusted."""
        choices = getattr(completion, "choices", None)
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = getattr(choice, "message", None)
        if message is None:
            return Generation.failed(f"the server's reply has no choices[0].message: {self._scrub(str(completion))}")
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            refusal = getattr(message, "refusal", None)
            if isinstance(refusal, str):  # OpenAI's structured refusal field
                text = refusal
            else:
                return Generation.failed(f"the server's reply has no text content: {self._scrub(str(choice))}")
        tokens = getattr(getattr(completion, "usage", None), "completion_tokens", None)
        return Generation(text=text.strip(), generated_tokens=tokens if isinstance(tokens, int) else 0)

    # -- HTTP ------------------------------------------------------------------------------------

    def _post(self, body: Mapping[str, Any]) -> object:
        return self._call(
            lambda: self._client.chat.completions.create(**body, extra_headers=self._request_headers),
            self.policy.request_timeout_s,
        )

    def _call(self, send: Callable[[], object], timeout: float) -> object:
        """One attempt through the SDK, its failure turned into ours (`_Fatal`, `_Transient`,
        `_ItemFailure`). A reply that is not JSON comes back as text (the SDK's lenient mode)."""
        import openai

        try:
            reply = send()
        except openai.APIStatusError as exc:
            raise self._classify_status(exc) from None
        except openai.APITimeoutError:
            raise _Transient(f"no answer within {timeout:g} s") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise _Transient(f"cannot connect ({type(cause).__name__}: {self._scrub(str(cause))})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # a JSON content type, a body that is not JSON
            raise _Transient(f"the reply is not JSON ({self._scrub(str(exc))[:200]})") from None
        if isinstance(reply, str):
            raise _Transient(f"the reply is not JSON: {self._scrub(reply[:200])!r}")
        return reply

    def _classify_status(self, error: Any) -> Exception:
        """`error` an `openai.APIStatusError` (typed loosely: the SDK is imported lazily)."""
        status = int(error.status_code)
        detail = self._server_message(error.response)
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
            return _Transient(f"HTTP {status} ({detail})", _retry_after(error.response.headers), status)
        return _ItemFailure(detail, status)

    def _server_message(self, response: Any) -> str:
        """The message of an error reply (an httpx response the SDK has read), scrubbed of the key."""
        try:
            raw = str(response.text)
        except Exception:  # noqa: BLE001 - a body that cannot be decoded says nothing more
            raw = ""
        message = raw
        try:
            parsed = json.loads(raw)
            inner = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
            message = inner.get("message", raw) if isinstance(inner, dict) else str(inner)
        except (json.JSONDecodeError, AttributeError):
            pass
        message = " ".join(str(message).split()) or (getattr(response, "reason_phrase", "") or "no message")
        return self._scrub(message[:_MESSAGE_LIMIT])

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "[API key]") if self._api_key else text

    def _probe(self) -> list[str]:
        """`GET /models`: is anything there, and are we let in? Names the served models for
        later messages. A server without the endpoint (404), or a busy one (429, 5xx), is not an
        error here."""
        where = public_url(self.base_url)
        timeout = self.policy.connect_probe_timeout_s
        try:
            page = self._call(
                lambda: self._client.models.list(extra_headers=self._request_headers, timeout=timeout), timeout
            )
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
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            return []
        return [str(model.id) for model in data if isinstance(getattr(model, "id", None), str)]


def _request_headers(api_key: str | None) -> Mapping[str, Any]:
    """Headers each request adds: none with a key; without one, the Authorization header left
    out (`openai.Omit`), as the standard-library client sent none."""
    if api_key:
        return {}
    from openai import Omit

    return {"Authorization": Omit()}


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = headers.get("Retry-After") if headers else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for APIs, and the backoff covers it
