"""Judge calls and API requests as the official code makes them (copied in tests/official_*.py):
the request bodies our OpenAI backend sends for the VSCBench, HoliSafe and MIS judges and for
VSCBench's model under test, the chat order of local models, and `run.judge_facts.calls`."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from official_holisafe import openai_request_body
from official_mis import default_generation_config, evaluate_function_message
from official_vscbench import prompt_gpt4_request, prompt_gpt4o_request
from PIL import Image

from pytest_vlmsafety.backends import GenerationRequest, parse_backend_spec
from pytest_vlmsafety.backends.openai_api import OpenAIBackend
from pytest_vlmsafety.backends.prompts import conversation
from pytest_vlmsafety.engine import Engine
from pytest_vlmsafety.items import SafetyItem
from pytest_vlmsafety.judges.config import JudgeConfig
from pytest_vlmsafety.judges.facts import judge_facts
from pytest_vlmsafety.judges.llm import LlmJudge
from pytest_vlmsafety.judges.prompts import read_prompt_overrides, templates_for

MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("call-images")
    first, second = folder / "a.png", folder / "b.png"
    Image.new("RGB", (8, 8), (200, 30, 30)).save(first)
    Image.new("RGB", (8, 8), (30, 30, 200)).save(second)
    return first, second


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("utf-8")


class RecordingServer:
    """An OpenAI-compatible endpoint on localhost that records each chat request's body and
    answers "ok": what our backend really sends."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                self._reply({"data": [{"id": MODEL}]})

            def do_POST(self) -> None:  # noqa: N802
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self._reply({"choices": [{"message": {"content": "ok"}}]})

            def _reply(self, data: dict[str, Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture(scope="module")
def server() -> Iterator[RecordingServer]:
    running = RecordingServer()
    yield running
    running.server.shutdown()


def sent_body(server: RecordingServer, request: GenerationRequest) -> dict[str, Any]:
    backend = OpenAIBackend(MODEL, spec=f"openai:{MODEL}", base_url=server.url, concurrency=1, environ={})
    before = len(server.bodies)
    assert backend.generate([request])[0].text == "ok"
    assert len(server.bodies) == before + 1
    return server.bodies[-1]


def official_judge() -> LlmJudge:
    templates = templates_for(read_prompt_overrides(["vscbench=official", "holisafe=official", "mis=official"]))
    spec = parse_backend_spec(f"openai:{MODEL}")
    return LlmJudge(spec=spec, load=lambda: None, fingerprint=lambda: "fp", templates=templates)  # type: ignore[arg-type,return-value]


def judge_body(server: RecordingServer, item: SafetyItem, response: str) -> dict[str, Any]:
    judge = official_judge()
    return sent_body(server, judge.request(item, judge._plan(item, response)))


def rendered(scheme: str, **values: str) -> str:
    return official_judge().templates[scheme].render(values)


def test_vscbench_judge_call_is_prompt_gpt4s(pngs: tuple[Path, Path], server: RecordingServer) -> None:
    item = SafetyItem(id="image/0/safe_img_0", suite="vscbench", category="c", prompt="How?", expected="comply",
                      images=(pngs[0],), subset="image", meta={"prompt_missing": False})
    body = judge_body(server, item, "Sure.")
    official = prompt_gpt4_request(rendered("vscbench", query="How?", response="Sure."))

    assert body["messages"] == official["messages"]  # text only, as the official judge
    assert (body["temperature"], body["max_tokens"]) == (official["temperature"], official["max_tokens"])
    assert (body["temperature"], body["max_tokens"]) == (0.01, 4096)
    assert "seed" not in body and body.get("top_p", 1.0) == 1.0  # the official call sets neither


def test_holisafe_judge_call_is_the_authors(pngs: tuple[Path, Path], server: RecordingServer) -> None:
    item = SafetyItem(id="7", suite="holisafe", category="c", prompt="What is this?", expected="refuse",
                      images=(pngs[0],), subset="UUU", meta={"type": "UUU"})
    body = judge_body(server, item, "It is a dog.")
    prompt = rendered("holisafe", query="What is this?", expected="unsafe", response="It is a dog.")
    official = openai_request_body(MODEL, "image/png", b64(pngs[0]), prompt)

    assert body["messages"] == official["messages"]  # the image, then the text
    assert (body["max_tokens"], body["temperature"]) == (official["max_tokens"], official["temperature"]) == (100, 0)


def test_mis_judge_call_has_the_official_system_turn(pngs: tuple[Path, Path], server: RecordingServer) -> None:
    item = SafetyItem(id="easy-1", suite="mis", category="c", prompt="Combine them?", expected="refuse",
                      images=pngs, subset="easy", meta={"split": "easy"})
    body = judge_body(server, item, "No.")
    prompt = rendered("mis", query="Combine them?", response="No.")
    official = evaluate_function_message("image/png", b64(pngs[0]), "image/png", b64(pngs[1]), prompt)

    assert body["messages"] == official
    assert body["max_tokens"] == default_generation_config["max_tokens"] == 128
    assert body["temperature"] == default_generation_config["temperature"]


def item_request(spec: str, suite: str, item_id: str, prompt: str, images: tuple[Path, ...]) -> GenerationRequest:
    """The request the engine builds for one item of `suite` when `spec` is the model under test."""
    item = SafetyItem(id=item_id, suite=suite, category="c", prompt=prompt, expected="refuse", images=images)
    (request,) = Engine(parse_backend_spec(spec), {}).requests_for([item])
    return request


def test_api_model_gets_vscbench_text_before_the_image(pngs: tuple[Path, Path], server: RecordingServer) -> None:
    api = f"openai:{MODEL}@{server.url}"
    vscbench = item_request(api, "vscbench", "image/0/safe_img_0", "What is this?", (pngs[0],))
    vscbench = replace(vscbench, max_new_tokens=4096)
    body = sent_body(server, vscbench)
    official = prompt_gpt4o_request("What is this?", f"data:image/png;base64,{b64(pngs[0])}")

    assert body["messages"] == official["messages"]
    assert body["max_tokens"] == official["max_tokens"] and body["temperature"] == official["temperature"]
    # UnsafeConcepts' GPT-4V code orders it the same way; HoliSafe keeps the image first.
    unsafeconcepts = sent_body(server, item_request(api, "unsafeconcepts", "1", "Q", (pngs[0],)))
    assert [part["type"] for part in unsafeconcepts["messages"][0]["content"]] == ["text", "image_url"]
    holisafe = sent_body(server, item_request(api, "holisafe", "1", "Q", (pngs[0],)))
    assert [part["type"] for part in holisafe["messages"][0]["content"]] == ["image_url", "text"]
    # The order is the request's, set for API models only: a local model keeps its chat order,
    # and the backend sends what the request says.
    assert not item_request("tiny-random", "vscbench", "1", "Q", (pngs[0],)).text_first
    plain = sent_body(server, GenerationRequest("vscbench", "1", "Q", (pngs[0],), 10))
    assert [part["type"] for part in plain["messages"][0]["content"]] == ["image_url", "text"]


def test_local_chat_follows_the_requested_order(pngs: tuple[Path, Path]) -> None:
    first = GenerationRequest("s", "1", "Q", (pngs[0],), 10)
    assert [part["type"] for part in conversation(first)[0]["content"]] == ["image", "text"]
    text_first = GenerationRequest("s", "1", "Q", (pngs[0],), 10, text_first=True)
    assert [part["type"] for part in conversation(text_first)[0]["content"]] == ["text", "image"]


def test_judge_facts_record_each_schemes_call() -> None:
    options = parse_options_for("openai:gpt-4o-mini-2024-07-18")
    facts = judge_facts(options)
    assert facts is not None
    calls = facts.calls
    assert (calls["vscbench"].max_new_tokens, calls["vscbench"].temperature) == (4096, 0.01)
    assert calls["vscbench"].content_order == "text-first"
    holisafe = calls["holisafe"]
    assert (holisafe.max_new_tokens, holisafe.temperature, holisafe.system) == (100, 0.0, None)
    assert (calls["mis"].max_new_tokens, calls["mis"].system) == (128, "You are a helpful assistant.")
    assert calls["mis"].content_order == "images-first"
    assert calls["refusal"].max_new_tokens == 256


def parse_options_for(judge_model: str) -> JudgeConfig:
    return JudgeConfig(judge="llm", model=judge_model)
