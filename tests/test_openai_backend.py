"""The openai backend: spec forms and settings, failing fast, retrying, and end to end against a
real vLLM server (tests/vllm_server.py) with the same outputs as the Hugging Face backend."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections import deque
from pathlib import Path

import pytest
from PIL import Image

from pytest_vlmsafety.backends import GenerationRequest, parse_backend_spec
from pytest_vlmsafety.backends.hf import HuggingFaceBackend
from pytest_vlmsafety.backends.openai_api import (
    OpenAIBackend,
    RetryPolicy,
    api_key_from_env,
    public_url,
    resolve_base_url,
    server_fingerprint,
)
from pytest_vlmsafety.errors import ConfigError, VlmSafetyError

pytest.register_assert_rewrite("vllm_server")  # it is also loaded as a plugin, below
from vllm_server import SERVED_NAME, ScriptedProxy, ServerInfo, free_port  # noqa: E402

pytest_plugins = ["vllm_server"]

SECRET = "sk-test-4f9c2b7e1d0a"
FAST = RetryPolicy(
    max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, max_total_s=10.0, request_timeout_s=120.0,
    max_consecutive_exhausted=2, connect_probe_timeout_s=5.0,
)


def request(item_id: str, prompt: str, images: tuple[Path, ...] = (), max_new: int = 12) -> GenerationRequest:
    return GenerationRequest("s", item_id, prompt, images, max_new)


def backend_at(url: str, *, concurrency: int = 2, policy: RetryPolicy = FAST, environ: dict[str, str] | None = None) -> OpenAIBackend:
    return OpenAIBackend(
        SERVED_NAME, spec=f"openai:{SERVED_NAME}", base_url=url, concurrency=concurrency, policy=policy,
        environ=environ if environ is not None else {},
    )


def comparable(text: str | None) -> str | None:
    """vLLM holds back a trailing incomplete UTF-8 sequence that transformers decodes as U+FFFD;
    the tokens are the same."""
    return None if text is None else text.rstrip("\ufffd")


# --- specs and settings -------------------------------------------------------------------------


def test_server_and_vllm_spec_forms(tmp_path: Path) -> None:
    plain = parse_backend_spec("openai:gpt-4o-mini")
    assert (plain.kind, plain.target, plain.base_url) == ("openai", "gpt-4o-mini", None)
    served = parse_backend_spec("openai:Qwen/Qwen2-VL-7B-Instruct@http://127.0.0.1:8000/v1/")
    assert (served.target, served.base_url) == ("Qwen/Qwen2-VL-7B-Instruct", "http://127.0.0.1:8000/v1")
    assert parse_backend_spec("openai:org/model@name@https://host/v1").target == "org/model@name"
    assert not served.is_noise
    assert parse_backend_spec("vllm:qwen2-vl").target == "Qwen/Qwen2-VL-7B-Instruct"
    assert parse_backend_spec(f"vllm:{tmp_path}").target == str(tmp_path.resolve())
    tiny = parse_backend_spec("vllm:tiny-random")
    assert (tiny.kind, tiny.target, tiny.is_noise) == ("vllm", "tiny-random", True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("openai:", "give the served model's name after 'openai:'"),
        ("openai:@http://127.0.0.1:8000/v1", "give the served model's name"),
        ("vllm:not a model", "unknown model after 'vllm:'"),
    ],
)
def test_bad_server_and_vllm_specs_are_usage_errors(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_backend_spec(raw)
    with pytest.raises(ConfigError, match="--judge-model="):
        parse_backend_spec(raw, option="--judge-model")


def test_base_url_comes_from_the_option_then_the_environment() -> None:
    env = {"OPENAI_BASE_URL": "http://10.0.0.5:9000/v1/"}
    assert resolve_base_url("http://127.0.0.1:8000/v1/", env) == "http://127.0.0.1:8000/v1"
    assert resolve_base_url(None, env) == "http://10.0.0.5:9000/v1"
    assert resolve_base_url(None, {}) == "https://api.openai.com/v1"
    with pytest.raises(ConfigError, match="not an http"):
        resolve_base_url("127.0.0.1:8000", {})
    assert public_url("https://user:pw@host.example:8443/v1?api-key=x") == "https://host.example:8443/v1"
    assert server_fingerprint("m", "https://user:pw@host/v1?key=1") == "openai:m@https://host/v1"


def test_base_url_option_is_checked_at_startup() -> None:
    from run_options import run_options

    def parse(url: str):  # type: ignore[no-untyped-def]
        return run_options(vlm_base_url=url).model.load

    assert parse("http://127.0.0.1:8000/v1/").base_url == "http://127.0.0.1:8000/v1"
    with pytest.raises(ConfigError, match="--vlm-base-url='localhost:8000'"):
        parse("localhost:8000")


def test_a_served_models_cache_identity_is_its_name_and_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from pytest_vlmsafety.backends import store_identity
    from pytest_vlmsafety.cache import Cache
    from pytest_vlmsafety.backends.config import LoadConfig

    monkeypatch.setenv("VLMSAFETY_API_KEY", SECRET)
    options = replace(LoadConfig(), base_url="http://127.0.0.1:8000/v1")
    cache = Cache(tmp_path)
    fingerprint, params = store_identity(parse_backend_spec("openai:m"), options, "official", cache)
    assert fingerprint.value == "openai:m@http://127.0.0.1:8000/v1" and params["backend"] == "openai"
    elsewhere, _ = store_identity(parse_backend_spec("openai:m@http://127.0.0.2:8000/v1"), options, "official", cache)
    assert elsewhere.value == "openai:m@http://127.0.0.2:8000/v1"
    assert SECRET not in json.dumps([fingerprint.value, params])


def test_api_key_comes_from_the_environment_in_order() -> None:
    assert api_key_from_env(("VLMSAFETY_API_KEY", "OPENAI_API_KEY"), {"OPENAI_API_KEY": "b"}) == ("b", "OPENAI_API_KEY")
    both = {"OPENAI_API_KEY": "b", "VLMSAFETY_API_KEY": "a"}
    assert api_key_from_env(("VLMSAFETY_API_KEY", "OPENAI_API_KEY"), both) == ("a", "VLMSAFETY_API_KEY")
    assert api_key_from_env(("VLMSAFETY_API_KEY",), {"VLMSAFETY_API_KEY": "  "}) == (None, None)


def test_backoff_doubles_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(initial_delay_s=1.0, max_delay_s=5.0)
    # jitter 1 -> the full backoff, jitter 0 -> half of it
    assert [policy.delay(n, None, 1.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(2, None, 0.0) == 1.0
    assert policy.delay(1, 3.0, 0.0) == 3.0  # Retry-After is a floor
    assert policy.delay(1, 100.0, 0.0) == 5.0  # ... capped like any delay


# --- failing fast: the run cannot work ------------------------------------------------------------


def test_nothing_listening_is_one_clear_error_at_load() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"no OpenAI-compatible server answers at http://127.0.0.1:{port}/v1"):
        backend_at(f"http://127.0.0.1:{port}/v1")
    assert time.monotonic() - started < 5


def test_unknown_model_stops_the_run_with_one_error(scripted_proxy: ScriptedProxy) -> None:
    not_found = (404, {"error": {"message": "The model `tiny` does not exist.", "type": "NotFoundError", "code": 404}})
    scripted_proxy.script = deque([not_found] * 200)
    backend = backend_at(scripted_proxy.base_url, concurrency=4)
    requests = [request(str(i), "hello") for i in range(60)]
    with pytest.raises(VlmSafetyError, match="does not exist.*It serves: tiny.*base URL"):
        backend.generate(requests)
    # Only what was in flight when the first 404 came back, not one request per item.
    assert len(scripted_proxy.chat_requests()) <= 4
    # No key set: no Authorization header at all (not the SDK's placeholder).
    assert all("Authorization" not in seen.headers for seen in scripted_proxy.seen)
    with pytest.raises(VlmSafetyError, match="does not exist"):
        backend.generate(requests)
    assert len(scripted_proxy.chat_requests()) <= 4


def test_rejected_credentials_name_the_variable_never_the_key(
    scripted_proxy: ScriptedProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scripted_proxy.script = deque([(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})] * 10)
    backend = backend_at(scripted_proxy.base_url, environ={"VLMSAFETY_API_KEY": SECRET, "OPENAI_API_KEY": "other"})
    with pytest.raises(VlmSafetyError) as failure:
        backend.generate([request("1", "hello")])
    assert "refused the credentials (HTTP 401; $VLMSAFETY_API_KEY)" in str(failure.value)
    assert scripted_proxy.chat_requests()[0].headers["Authorization"] == f"Bearer {SECRET}"
    described = json.dumps(backend.describe())
    assert backend.describe()["api_key"] == "from $VLMSAFETY_API_KEY"
    for text in (str(failure.value), described, caplog.text):
        assert SECRET not in text


def test_a_server_that_keeps_failing_is_given_up_on_within_bounds(scripted_proxy: ScriptedProxy) -> None:
    # No upstream and no script: every chat request answers 503.
    backend = backend_at(scripted_proxy.base_url, concurrency=2)
    started = time.monotonic()
    with pytest.raises(VlmSafetyError, match=r"is failing: 2 requests in a row gave up after 4 attempts.*HTTP 503"):
        backend.generate([request(str(i), "hello") for i in range(50)])
    assert time.monotonic() - started < 10
    # Two in flight, four attempts each, and a few that were retrying when the run stopped.
    sent = len(scripted_proxy.chat_requests())
    assert sent <= 2 * FAST.max_attempts + 2
    # Found failing once, the server is failing for the rest of the process (issue 11): the next
    # call (another shard) fails at once with the same message, sending and probing nothing.
    requests_before = len(scripted_proxy.seen)
    started = time.monotonic()
    with pytest.raises(VlmSafetyError, match=r"is failing: 2 requests in a row"):
        backend.generate([request("again", "hello")])
    assert time.monotonic() - started < 1
    assert len(scripted_proxy.seen) == requests_before


def test_a_server_that_rejects_the_seed_of_a_seeded_run_stops_it(scripted_proxy: ScriptedProxy) -> None:
    """--vlm-seed asks for reproducible samples: a server that rejects `seed` stops the run with
    one error naming the option, rather than sending unseeded requests under run facts that say
    seeded (issue 22)."""
    from pytest_vlmsafety.backends.base import Sampling

    rejected = (400, {"error": {"message": "Unrecognized request argument supplied: seed"}})
    scripted_proxy.script = deque([rejected] * 10)
    sampled = Sampling(temperature=1.0, top_p=0.9, seed=42)
    requests = [dataclasses.replace(request(str(i), "hello"), sampling=sampled) for i in range(3)]
    with pytest.raises(VlmSafetyError, match=r"rejects the request field 'seed'.*--vlm-seed cannot be honoured"):
        backend_at(scripted_proxy.base_url, concurrency=1).generate(requests)
    bodies = [json.loads(s.body) for s in scripted_proxy.chat_requests()]
    assert bodies and all("seed" in body for body in bodies)  # never sent unseeded


@pytest.mark.parametrize(
    ("option", "args"),
    [
        ("--vlm", ["--vlm=openai:m"]),
        ("--judge-model", ["--vlm=tiny-random", "--safety-judge=llm", "--judge-model=openai:m"]),
    ],
)
def test_without_the_openai_package_an_openai_spec_fails_at_startup_with_the_install_line(
    option: str, args: list[str], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "openai", None)  # `import openai` fails, as when not installed
    install = "pip install 'pytest-vlmsafety[openai]'"
    with pytest.raises(ConfigError, match=rf"^{option}=openai:m: .*openai package.*{re.escape(install)}$"):
        parse_backend_spec("openai:m", option=option)
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.stderr.lines if line.strip()]
    assert f"{option}=openai:m: " in line and line.endswith(install)
    # ... and a backend built some other way says the same when it loads.
    with pytest.raises(ConfigError, match=re.escape(install)):
        OpenAIBackend("m", spec="openai:m", base_url="http://127.0.0.1:1/v1", option=option, environ={})


def test_a_reply_without_text_fails_its_item_and_one_that_is_not_json_is_retried(scripted_proxy: ScriptedProxy) -> None:
    """The SDK parses replies leniently: a reply without choices is that item's failure; a reply
    that is not JSON (an HTML error page from a proxy) is transient, retried, then given up on."""
    scripted_proxy.script = deque([(200, {"object": "chat.completion"}), (200, {"choices": [{"message": {}}]})])
    out = backend_at(scripted_proxy.base_url, concurrency=1).generate([request("1", "hello"), request("2", "hello")])
    assert out[0].error and out[0].error.startswith("the server's reply has no choices[0].message")
    assert out[1].error and out[1].error.startswith("the server's reply has no text content")

    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Html(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._reply(b'{"data": []}', "application/json")

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(b"<html>Bad gateway</html>", "text/html" if self.path.endswith("completions") else "")

        def _reply(self, payload: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type or "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        html = backend_at(f"http://127.0.0.1:{server.server_address[1]}/v1", concurrency=1)
        (failed,) = html.generate([request("1", "hello")])
    finally:
        server.shutdown()
        server.server_close()
    assert failed.error == f"gave up after {FAST.max_attempts} attempts over 0 s: the reply is not JSON: '<html>Bad gateway</html>'"


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="--vlm-concurrency"):
        OpenAIBackend("m", spec="openai:m", base_url="http://127.0.0.1:1/v1", concurrency=0)


# --- against a real vLLM server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_backend(tiny_model: Path) -> HuggingFaceBackend:
    return HuggingFaceBackend(str(tiny_model), spec="tiny-random", noise=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = {"red": folder / "red.png", "alpha": folder / "blue-alpha.png", "jpeg": folder / "green.jpg"}
    Image.new("RGB", (40, 30), (255, 0, 0)).save(paths["red"])
    Image.new("RGBA", (50, 60), (0, 0, 255, 90)).save(paths["alpha"])
    Image.new("RGB", (64, 48), (20, 200, 40)).save(paths["jpeg"], quality=90)
    return paths


@pytest.fixture(scope="module")
def image_requests(images: dict[str, Path]) -> list[GenerationRequest]:
    return [
        request("text", "Hello there"),
        request("red", "What is shown?", (images["red"],)),
        request("alpha", "What is shown?", (images["alpha"],)),
        request("jpeg", "Describe the image in detail", (images["jpeg"],)),
        request("two", "Compare these", (images["red"], images["jpeg"])),
    ]


@pytest.mark.slow
def test_outputs_match_the_hugging_face_backend(
    vllm_server: ServerInfo, hf_backend: HuggingFaceBackend, image_requests: list[GenerationRequest]
) -> None:
    backend = backend_at(vllm_server.base_url, concurrency=3)
    finished: list[int] = []
    served = backend.generate(image_requests, progress=lambda batch: finished.extend(i for i, _ in batch))
    local = hf_backend.generate(image_requests, batch_size=1)
    assert sorted(finished) == list(range(len(image_requests)))
    assert all(g.error is None and g.generated_tokens > 0 for g in served)
    assert [comparable(g.text) for g in served] == [comparable(g.text) for g in local]
    # The images reach the model: the same prompt with another image gives another answer.
    assert served[1].text != served[2].text
    described = backend.describe()
    assert described["backend"] == "openai" and described["base_url"] == vllm_server.base_url
    assert backend.served_models == [SERVED_NAME]


@pytest.mark.slow
def test_a_system_prompt_reaches_the_served_model_as_it_reaches_the_local_one(
    vllm_server: ServerInfo, hf_backend: HuggingFaceBackend, image_requests: list[GenerationRequest]
) -> None:
    # The server renders the system message with the model's chat template; hf renders the same
    # system turn with it: greedy outputs agree, and differ from those without the system turn.
    system = "You are a careful assistant. Answer in one sentence."
    with_system = [dataclasses.replace(r, system=system) for r in image_requests[:3]]
    served = backend_at(vllm_server.base_url, concurrency=3).generate(with_system)
    local = hf_backend.generate(with_system, batch_size=1)
    assert all(g.error is None for g in served), [g.error for g in served]
    assert [comparable(g.text) for g in served] == [comparable(g.text) for g in local]
    plain = hf_backend.generate(image_requests[:3], batch_size=1)
    assert [g.text for g in local] != [g.text for g in plain]


@pytest.mark.slow
def test_transient_errors_are_retried_and_the_outputs_still_match(
    vllm_server: ServerInfo, hf_backend: HuggingFaceBackend, image_requests: list[GenerationRequest]
) -> None:
    proxy = ScriptedProxy(upstream=f"http://127.0.0.1:{vllm_server.port}", script=deque([503, 429, 500, "forward", 502]))
    proxy.start()
    try:
        served = backend_at(proxy.base_url, concurrency=2).generate(image_requests)
    finally:
        proxy.stop()
    local = hf_backend.generate(image_requests, batch_size=1)
    assert [comparable(g.text) for g in served] == [comparable(g.text) for g in local]
    # Each scripted failure cost one retry, no more.
    assert len(proxy.chat_requests()) == len(image_requests) + 4


@pytest.mark.slow
def test_a_server_that_goes_away_mid_run_is_waited_for(
    vllm_server: ServerInfo, hf_backend: HuggingFaceBackend, image_requests: list[GenerationRequest]
) -> None:
    proxy = ScriptedProxy(upstream=f"http://127.0.0.1:{vllm_server.port}").start()
    patient = RetryPolicy(max_attempts=10, initial_delay_s=0.2, max_delay_s=1.0, max_total_s=30.0, max_consecutive_exhausted=2)
    backend = backend_at(proxy.base_url, concurrency=1, policy=patient)
    comebacks = []

    def take_the_server_down_once(batch: list) -> None:
        if not comebacks:
            comebacks.append(proxy.down_for(1.5))  # refused connections for 1.5 s

    try:
        served = backend.generate(image_requests, progress=take_the_server_down_once)
    finally:
        for thread in comebacks:
            thread.join(timeout=10)
        proxy.stop()
    local = hf_backend.generate(image_requests, batch_size=1)
    assert [comparable(g.text) for g in served] == [comparable(g.text) for g in local]


@pytest.mark.slow
def test_an_item_the_server_rejects_fails_alone(vllm_server: ServerInfo) -> None:
    requests = [request("ok", "Hello there"), request("too-long", "Hello there", max_new=50_000), request("ok2", "Hi")]
    out = backend_at(vllm_server.base_url).generate(requests)
    assert out[0].text and out[2].text
    assert out[1].text is None and out[1].error and out[1].error.startswith("HTTP 400 from the server")


@pytest.mark.slow
def test_a_field_the_server_rejects_is_dropped_and_the_request_sent_again(vllm_server: ServerInfo) -> None:
    rejected = (400, {"error": {"message": "Unrecognized request argument supplied: seed"}})
    proxy = ScriptedProxy(upstream=f"http://127.0.0.1:{vllm_server.port}", script=deque([rejected])).start()
    try:
        out = backend_at(proxy.base_url, concurrency=1).generate([request("1", "Hello there"), request("2", "Hi")])
    finally:
        proxy.stop()
    assert all(g.text for g in out)
    bodies = [json.loads(s.body) for s in proxy.chat_requests()]
    assert "seed" in bodies[0] and all("seed" not in body for body in bodies[1:])
    assert len(bodies) == 3


@pytest.mark.slow
def test_plugin_run_over_the_server_gives_the_hugging_face_verdicts(
    pytester: pytest.Pytester, vllm_server: ServerInfo, tiny_model: Path, vlm_env: Path
) -> None:
    common = (
        "--safety-suite=sample", "--safety-sample=12", "--vlm-max-new-tokens=16", "--vlm-cache=off",
        "--max-undersafety=off", "--max-oversafety=off", "-p", "no:cacheprovider",
    )
    items = {}
    for name, model_args in {
        "hf": (f"--vlm={tiny_model}",),
        "openai": (f"--vlm=openai:{SERVED_NAME}", f"--vlm-base-url={vllm_server.base_url}", "--vlm-concurrency=4"),
    }.items():
        result = pytester.runpytest_subprocess(*model_args, *common, f"--safety-report=reports-{name}")
        document = json.loads((pytester.path / f"reports-{name}" / "vlmsafety-results.json").read_text())
        assert not [i for i in document["items"] if i["outcome"] == "error"], result.stdout.str()[-3000:]
        items[name] = {i["id"]: i for i in document["items"]}
        if name == "openai":
            assert document["run"]["model"]["backend"] == "openai"
    assert items["hf"].keys() == items["openai"].keys() and len(items["hf"]) == 12
    for item_id, hf_item in items["hf"].items():
        served_item = items["openai"][item_id]
        assert served_item["verdict"] == hf_item["verdict"], item_id
        assert comparable(served_item["response"]) == comparable(hf_item["response"]), item_id


def test_retries_and_timeout_options_bound_each_request(scripted_proxy: ScriptedProxy) -> None:
    from pytest_vlmsafety.backends import load_backend
    from run_options import run_options

    values = {"--vlm": f"openai:{SERVED_NAME}", "--vlm-retries": "1", "--vlm-timeout": "7",
              "--vlm-base-url": scripted_proxy.base_url}
    options = run_options(values)
    backend = load_backend(parse_backend_spec(values["--vlm"]), options.model.load)
    assert isinstance(backend, OpenAIBackend)
    assert (backend.policy.max_attempts, backend.policy.request_timeout_s) == (2, 7.0)
