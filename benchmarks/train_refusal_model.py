"""Train the refusal judge's logistic regression (`pytest_vlmsafety/judges/refusal_model.json`).

    python benchmarks/train_refusal_model.py [--judge-dev DIR] [--out FILE]

Reads the human labels of `../shared/judge-dev` (MSTS: five VLMs; XSTest v2: two chat models;
both CC BY 4.0; never copied into the repository), and fits a logistic regression over the
features of `pytest_vlmsafety.judges.refusal_model.features` with numpy (training only; the
package reads the weights with the standard library). Deterministic: the same data gives the
same file, byte for byte.

How it keeps to what generalises:
- vocabulary: an n-gram feature is kept only when at least `MIN_MODELS` of the training models
  used it (and in `MIN_ROWS` responses), so a catchphrase of one model cannot decide a verdict;
- weights: each model weighs the same in total whatever its number of responses, and the two
  classes weigh the same (compliance is rare in MSTS); L2 penalty `L2`;
- `leave_one_model_out` fits on all models but one and measures on that one: the figure that
  `benchmarks/refusal_judge_eval.py` reports and that decides changes here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pytest_vlmsafety.judges.refusal import decide, read_response
from pytest_vlmsafety.judges.refusal_model import MODEL_FILE, RefusalModel, features
from pytest_vlmsafety.suites.base import read_jsonl

HERE = Path(__file__).resolve().parent
DEFAULT_JUDGE_DEV = HERE.parent.parent / "shared" / "judge-dev"
DEV_FILES = ("msts_dev.jsonl", "xstest_v2_dev.jsonl")

MIN_MODELS = 3
MIN_ROWS = 5
L2 = 1e-3
STEPS = 600
LEARNING_RATE = 0.1
# Features that are not n-grams: kept whatever their spread.
_STRUCTURAL_PREFIXES = ("rule:", "rules:", "cue:", "len:", "list:", "short+", "medium+", "long+")


@dataclass(frozen=True)
class Example:
    id: str
    dataset: str  # "msts" or "xstest"
    model: str
    response: str
    refused: bool
    active: frozenset[str]


def model_features(response: str) -> frozenset[str]:
    """What the shipped judge computes for a response (the rules' decision, then the features)."""
    decision = decide(response)
    return frozenset(features(read_response(response).speech, decision.rule, decision.label == "refused"))


def load_examples(folder: Path) -> list[Example]:
    """Both dev files; raises FileNotFoundError naming a missing one."""
    examples: list[Example] = []
    for name in DEV_FILES:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: pass --judge-dev with the folder of {', '.join(DEV_FILES)}")
        dataset = name.split("_")[0]
        for _, raw in read_jsonl(path):
            response = str(raw["response"] if "response" in raw else raw["completion"])
            examples.append(
                Example(str(raw["id"]), dataset, str(raw["model"]), response, bool(raw["refused"]),
                        model_features(response))
            )
    return examples


def vocabulary(examples: Sequence[Example]) -> list[str]:
    """The features the model may weigh: structural ones, and n-grams that enough models used."""
    models_of: dict[str, set[str]] = defaultdict(set)
    rows_of: dict[str, int] = defaultdict(int)
    for example in examples:
        for feature in example.active:
            models_of[feature].add(example.model)
            rows_of[feature] += 1
    return sorted(
        feature for feature in models_of
        if feature.startswith(_STRUCTURAL_PREFIXES)
        or (len(models_of[feature]) >= MIN_MODELS and rows_of[feature] >= MIN_ROWS)
    )


def sample_weights(examples: Sequence[Example]) -> np.ndarray:
    """Each dataset weighs the same in total, each model the same within it; then the two classes
    weigh the same."""
    per_model: dict[str, int] = defaultdict(int)
    models_of: dict[str, set[str]] = defaultdict(set)
    for example in examples:
        per_model[example.model] += 1
        models_of[example.dataset].add(example.model)
    weights = np.array(
        [1.0 / per_model[example.model] / len(models_of[example.dataset]) for example in examples]
    )
    labels = np.array([example.refused for example in examples])
    for value in (True, False):
        weights[labels == value] *= 0.5 / weights[labels == value].sum()
    return weights * len(examples)


def train(examples: Sequence[Example]) -> RefusalModel:
    vocab = vocabulary(examples)
    index = {feature: position for position, feature in enumerate(vocab)}
    # The features as a sparse (row, column) list: a response has a few dozen of thousands.
    pairs = [(row, index[f]) for row, example in enumerate(examples) for f in example.active if f in index]
    rows = np.array([row for row, _ in pairs], dtype=np.int64)
    cols = np.array([col for _, col in pairs], dtype=np.int64)
    labels = np.array([1.0 if example.refused else 0.0 for example in examples])
    weights = sample_weights(examples)
    coef = np.zeros(len(vocab))
    bias = 0.0
    # Adam on the weighted log loss with an L2 penalty: deterministic, a second on a CPU.
    moments = [np.zeros(len(vocab)), np.zeros(len(vocab)), 0.0, 0.0]
    for step in range(1, STEPS + 1):
        scores = np.clip(np.bincount(rows, weights=coef[cols], minlength=len(examples)) + bias, -30, 30)
        error = (1.0 / (1.0 + np.exp(-scores)) - labels) * weights / len(examples)
        grad_coef = np.bincount(cols, weights=error[rows], minlength=len(vocab)) + L2 * coef
        grad_bias = float(error.sum())
        moments[0] = 0.9 * moments[0] + 0.1 * grad_coef
        moments[1] = 0.999 * moments[1] + 0.001 * grad_coef**2
        moments[2] = 0.9 * moments[2] + 0.1 * grad_bias
        moments[3] = 0.999 * moments[3] + 0.001 * grad_bias**2
        correction = np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
        coef -= LEARNING_RATE * correction * moments[0] / (np.sqrt(moments[1]) + 1e-8)
        bias -= LEARNING_RATE * correction * moments[2] / (np.sqrt(moments[3]) + 1e-8)
    kept = {feature: round(float(value), 4) for feature, value in zip(vocab, coef, strict=True) if abs(value) >= 1e-3}
    return RefusalModel(round(bias, 4), kept)


def predict(model: RefusalModel, example: Example) -> bool:
    return model.probability(set(example.active)) >= model.threshold


def leave_one_model_out(examples: Sequence[Example]) -> dict[str, list[tuple[Example, bool]]]:
    """Per model: its examples and the verdict of a model trained on all the other models."""
    held: dict[str, list[tuple[Example, bool]]] = {}
    for left_out in sorted({example.model for example in examples}):
        model = train([example for example in examples if example.model != left_out])
        held[left_out] = [(example, predict(model, example)) for example in examples if example.model == left_out]
    return held


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge-dev", type=Path, default=DEFAULT_JUDGE_DEV,
                        help="folder of msts_dev.jsonl and xstest_v2_dev.jsonl (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=MODEL_FILE, help="weights JSON (default: %(default)s)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        examples = load_examples(args.judge_dev)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = train(examples)
    args.out.write_text(json.dumps(model.to_json(), indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"trained on {len(examples)} responses of {len({e.model for e in examples})} models: "
          f"{len(model.weights)} weights; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
