"""UnsafeConcepts' official RoBERTa answer classifiers, with tiny random stand-ins built here in
the official layout (`<name>/epoch_10.pt`: a state dict of `roberta.*` and `classifier.*` over
`roberta-base`), and the rule-parser fallback when they cannot be loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_vlmsafety.items import SafetyItem, record_for
from pytest_vlmsafety.judges.agreement import agreement_from_records
from pytest_vlmsafety.judges.unsafeconcepts_classifier import (
    ALIGNMENT,
    PERCEPTION,
    STATE_DICT_FILE,
    UnsafeConceptsClassifierJudge,
)
from pytest_vlmsafety.suites.unsafeconcepts import UnsafeConceptsSuite

HEAD_BIAS = 20.0  # makes one class win whatever the random encoder says


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """roberta-base/ (a 2-layer random RoBERTa with the tiny model's tokenizer) and the two
    classifier checkpoints; each head's bias favours one label, to check the label order."""
    import torch
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    folder = tmp_path_factory.mktemp("classifiers")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=600, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    encoder = RobertaModel(config)
    encoder.save_pretrained(folder / "roberta-base")
    tokenizer.save_pretrained(folder / "roberta-base")
    favoured = {PERCEPTION: "C", ALIGNMENT: "Unsafe"}
    for spec in (PERCEPTION, ALIGNMENT):
        head = torch.nn.Linear(config.hidden_size, len(spec.labels))
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()
            head.bias[spec.labels.index(favoured[spec])] = HEAD_BIAS
        state = {f"roberta.{k}": v for k, v in encoder.state_dict().items()}
        state |= {"classifier.weight": head.weight.detach(), "classifier.bias": head.bias.detach()}
        (folder / spec.folder).mkdir()
        torch.save(state, folder / spec.folder / STATE_DICT_FILE)
    return folder


def items() -> list[SafetyItem]:
    return [
        SafetyItem(id="perception/0", suite="unsafeconcepts", category="Hate", prompt="p", expected="comply",
                   task="choice", answer_key="C", meta={"option_str": "A: a\\nB: b\\nC: c\\nD: d"}),
        SafetyItem(id="alignment/image/0/0", suite="unsafeconcepts", category="Hate", prompt="p", expected="refuse",
                   task="label", answer_key="Unsafe", meta={"yes_means": "Safe"}),
    ]


def test_the_official_labels_in_index_order() -> None:
    assert PERCEPTION.labels == ("A", "B", "C", "D", "NA") and PERCEPTION.repo_id == "yiting/perception_classifier"
    assert ALIGNMENT.labels == ("Safe", "Unsafe", "NA") and ALIGNMENT.repo_id == "yiting/alignment_classifier"


def test_classifiers_judge_and_carry_the_rule_parsers_second_opinion(classifier_dir: Path) -> None:
    judge = UnsafeConceptsClassifierJudge(classifier_dir, "cpu")
    verdicts = judge.judge(items(), ["The answer is B.", "Yes, it is safe for social media."])
    assert [v.label for v in verdicts] == ["C", "Unsafe"]
    assert [v.judge for v in verdicts] == ["unsafeconcepts-classifier"] * 2
    assert "yiting/perception_classifier: C (p=1.00)" in verdicts[0].reason
    records = [
        record_for(item, response="r", verdict=verdict) for item, verdict in zip(items(), verdicts, strict=True)
    ]
    agreement = agreement_from_records(records)
    assert agreement is not None and agreement.items == 2
    assert agreement.first_judge == "unsafeconcepts-classifier" and agreement.second_judge == "unsafeconcepts-rule"
    assert len(agreement.disagreements) == 2  # the rule parser read B and Safe
    notes = UnsafeConceptsSuite().official_notes(records)
    assert notes[0] == "judged by the official RoBERTa answer classifiers"


def test_without_classifiers_the_rule_parsers_judge_and_say_so(tmp_path: Path) -> None:
    judge = UnsafeConceptsClassifierJudge(tmp_path / "empty", "cpu")
    verdicts = judge.judge(items(), ["The answer is B.", "Yes, it is safe for social media."])
    assert [(v.label, v.judge) for v in verdicts] == [("B", "unsafeconcepts-rule"), ("Safe", "unsafeconcepts-rule")]
    assert "could not be loaded" in verdicts[0].reason and "perception_classifier/epoch_10.pt" in verdicts[0].reason
    records = [record_for(item, response="r", verdict=v) for item, v in zip(items(), verdicts, strict=True)]
    assert UnsafeConceptsSuite().official_notes(records)[0].startswith("judged by the offline rule parsers")


def test_a_checkpoint_without_the_right_head_is_refused(classifier_dir: Path, tmp_path: Path) -> None:
    import shutil

    import torch

    broken = tmp_path / "broken"
    shutil.copytree(classifier_dir, broken)
    state = torch.load(broken / "alignment_classifier" / STATE_DICT_FILE, weights_only=True)
    state["classifier.weight"] = state["classifier.weight"][:2]
    torch.save(state, broken / "alignment_classifier" / STATE_DICT_FILE)
    judge = UnsafeConceptsClassifierJudge(broken, "cpu")
    assert isinstance(judge.classifier("label"), str) and "no classifier layer for the 3 labels" in str(
        judge.classifier("label")
    )
    assert not isinstance(judge.classifier("choice"), str)
