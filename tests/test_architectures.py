"""Every supported VLM architecture, as a tiny random model with the real processor, image
geometry and chat-template format (`backends/tiny_archs.py`): it loads through `--vlm`, runs
text-only, one-image, two-image and mixed-size batches, gives the same greedy answers in a batch
of 8 as one at a time, depends on the image, and receives exactly the token ids of the model's own
`processor.apply_chat_template(..., tokenize=True)` (the vLLM path's prompts too)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from pytest_vlmsafety.backends import GenerationRequest
from pytest_vlmsafety.backends.hf import HuggingFaceBackend
from pytest_vlmsafety.backends.images import load_images
from pytest_vlmsafety.backends.prompts import conversation
from pytest_vlmsafety.backends.tiny_archs import TINY_ARCHITECTURES
from pytest_vlmsafety.backends.vllm_engine import vllm_prompt

# Each test starts a pytest subprocess (or a model job): left out of the inner loop, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

ARCHITECTURES = list(TINY_ARCHITECTURES)
# Templates that write BOS themselves: a second one from the tokenizer was the bug.
BOS_IN_TEMPLATE = {"idefics3", "smolvlm", "gemma-3", "llama-3.2-vision"}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Very different sizes and aspect ratios (tiles, dynamic resolution), and plain colours."""
    folder = tmp_path_factory.mktemp("arch-images")
    sizes = {"small": (40, 30), "wide": (1200, 200), "tall": (300, 900), "photo": (640, 480)}
    out = {}
    for name, size in sizes.items():
        image = Image.new("RGB", size, (200, 30, 30))
        image.paste((20, 40, 220), (0, 0, size[0] // 2, size[1] // 3))
        image.save(folder / f"{name}.png")
        out[name] = folder / f"{name}.png"
    for name, colour in {"green": (0, 200, 0), "white": (250, 250, 250)}.items():
        Image.new("RGB", (200, 200), colour).save(folder / f"{name}.png")
        out[name] = folder / f"{name}.png"
    return out


def requests(images: dict[str, Path]) -> list[GenerationRequest]:
    def r(item_id: str, prompt: str, *names: str) -> GenerationRequest:
        return GenerationRequest("s", item_id, prompt, tuple(images[n] for n in names), 6)

    return [
        r("text", "Hello there"),
        r("one", "What is shown?", "small"),
        r("two", "Compare these two pictures", "photo", "tall"),  # MIS-style
        r("wide", "Describe the picture in detail", "wide"),
        r("photo", "Describe", "photo"),
        r("tall", "What is in this image?", "tall"),
        r("text-b", "Answer the question in the image."),
        r("two-b", "Which is safer?", "wide", "small"),
    ]


def reference_ids(processor: object, request: GenerationRequest) -> list[int]:
    chat = conversation(request, load_images(request.images))
    out = processor.apply_chat_template(  # type: ignore[attr-defined]
        chat, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    ids = out["input_ids"]
    ids = ids[0] if ids and isinstance(ids[0], list) else ids
    return list(ids)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_runs_with_the_models_own_prompt(
    name: str, tiny_architecture: Callable[[str], Path], images: dict[str, Path]
) -> None:
    backend = HuggingFaceBackend(str(tiny_architecture(name)), spec=f"tiny {name}")
    batch = requests(images)

    # The ids the model receives, alone and left-padded in a batch, are the processor's own.
    tokenizer = backend.tokenizer
    # Batches hold one image count (hf.batches), as here: padded rows of each count.
    groups = {count: [r for r in batch if len(r.images) == count] for count in (0, 1, 2)}
    padded = {count: backend._prepare(group)["input_ids"] for count, group in groups.items()}
    for request in batch:
        expected = reference_ids(backend.processor, request)
        assert backend._prepare([request])["input_ids"][0].tolist() == expected, request.item_id
        count = len(request.images)
        ids = padded[count][groups[count].index(request)].tolist()
        assert ids[len(ids) - len(expected):] == expected, request.item_id
        assert all(t == tokenizer.pad_token_id for t in ids[: len(ids) - len(expected)])
        if tokenizer.bos_token_id is not None:
            assert expected.count(tokenizer.bos_token_id) <= 1, f"{name}: two BOS tokens"
        if name in BOS_IN_TEMPLATE:
            assert expected[0] == tokenizer.bos_token_id
        # The vLLM path sends the chat text's ids, one placeholder per image (vLLM expands them
        # as the processor does): the same text, BOS once.
        sent = vllm_prompt(backend.processor, request)
        text = tokenizer.decode(sent["prompt_token_ids"])
        expanded = backend.processor(
            text=[text], images=[load_images(request.images)] if request.images else None, add_special_tokens=False,
            return_tensors="pt",
        )
        assert expanded["input_ids"][0].tolist() == expected, request.item_id
        assert len(sent.get("multi_modal_data", {}).get("image", [])) == len(request.images)
        if name in BOS_IN_TEMPLATE:
            assert sent["prompt_token_ids"].count(tokenizer.bos_token_id) == 1

    # Text-only, one-image, two-image and mixed-size items in one batch of 8: no errors, and greedy
    # answers equal to one at a time.
    batched = backend.generate(batch, batch_size=8)
    assert all(g.error is None and g.text is not None for g in batched), [g.error for g in batched]
    single = [backend.generate([request], batch_size=1)[0].text for request in batch]
    assert [g.text for g in batched] == single

    # The image changes the output: the same question about three different images.
    question = [GenerationRequest("s", n, "What is shown?", (images[n],), 6) for n in ("green", "white", "small")]
    answers = [g.text for g in backend.generate(question, batch_size=3)]
    assert len(set(answers)) > 1, answers


@pytest.mark.parametrize("name", ["qwen2-vl", "gemma-3"])
def test_architecture_through_the_plugin(
    name: str, tiny_architecture: Callable[[str], Path], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--vlm=FOLDER` on the sample suite with processor kwargs: every item runs, the kwargs are in
    the run facts."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tiny_architecture(name)
    kwargs = '{"max_pixels": 12544}' if name == "qwen2-vl" else '{"do_pan_and_scan": false}'
    result = pytester.runpytest_subprocess(
        f"--vlm={folder}", "--safety-suite=sample", "--safety-sample=6", "--vlm-cache=off",
        f"--vlm-processor-kwargs={kwargs}", "--max-undersafety=off", "--max-oversafety=off", "-p", "no:cacheprovider",
    )
    document = json.loads((pytester.path / "reports" / "vlmsafety-results.json").read_text())
    errors = [i["error"] for i in document["items"] if i["outcome"] == "error"]
    assert not errors, errors
    assert len(document["items"]) >= 6, result.stdout.str()[-2000:]
    assert json.loads(kwargs) in _find_processor_kwargs(document["run"])


def _find_processor_kwargs(node: object) -> list[object]:
    found: list[object] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "processor_kwargs":
                found.append(value)
            else:
                found.extend(_find_processor_kwargs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_find_processor_kwargs(value))
    return found


def test_without_torchvision_loading_is_one_message_naming_it(tiny_architecture: Callable[[str], Path]) -> None:
    """Qwen2-VL's processor always builds a video processor, which needs torchvision: without it,
    loading fails once with a usage error that names the package and how to install it."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['torchvision'] = None\n"  # as if it were not installed
        "from pytest_vlmsafety.backends.hf import HuggingFaceBackend\n"
        "from pytest_vlmsafety.errors import ConfigError\n"
        "try:\n"
        f"    HuggingFaceBackend({str(tiny_architecture('qwen2-vl'))!r}, spec='qwen2-vl')\n"
        "except ConfigError as exc:\n"
        "    print('CONFIG-ERROR', exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "CONFIG-ERROR --vlm=qwen2-vl" in run.stdout, run.stdout + run.stderr[-3000:]
    assert "needs torchvision" in run.stdout and "pip install torch==2.14.1 torchvision==0.29.1" in run.stdout
