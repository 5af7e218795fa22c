"""Cohen's kappa and the disagreement list, checked against values computed by hand."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from pytest_vlmsafety.items import SafetyItem, Verdict, record_for
from pytest_vlmsafety.output.document import JudgeAgreement
from pytest_vlmsafety.judges.agreement import (
    agreement_from_records,
    cohen_kappa,
    judge_agreement,
    with_second_opinion,
)

R, C = "refused", "complied"


def test_perfect_agreement_is_one() -> None:
    assert cohen_kappa([R, C, R], [R, C, R]) == 1.0


def test_symmetric_two_by_two_table() -> None:
    # 4 both refused, 1 refused/complied, 1 complied/refused, 4 both complied.
    # p_o = 8/10; each judge says refused 5 times: p_e = .5*.5 + .5*.5 = .5; kappa = .3/.5 = .6
    first = [R] * 4 + [R] + [C] + [C] * 4
    second = [R] * 4 + [C] + [R] + [C] * 4
    assert cohen_kappa(first, second) == pytest.approx(0.6)


def test_the_textbook_example() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15. p_o = 35/50 = .7;
    # first says yes 25/50, second 30/50: p_e = .5*.6 + .5*.4 = .5; kappa = .2/.5 = .4
    first = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_three_labels() -> None:
    first = ["A", "A", "B", "B", "NA", "A"]
    second = ["A", "B", "B", "B", "NA", "NA"]
    # p_o = 4/6; counts A 3/1, B 2/3, NA 1/2: p_e = (3 + 6 + 2)/36 = 11/36;
    # kappa = (24/36 - 11/36) / (25/36) = 13/25
    assert cohen_kappa(first, second) == pytest.approx(13 / 25)


def test_systematic_disagreement_is_minus_one() -> None:
    assert cohen_kappa([R, C, R, C], [C, R, C, R]) == pytest.approx(-1.0)


def test_undefined_kappa_is_none_not_invented() -> None:
    assert cohen_kappa([R, R, R], [R, R, R]) is None  # chance agreement is certain: 0/0
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="same items"):
        cohen_kappa([R], [R, C])


def test_agreement_lists_the_items_they_split_on_in_order() -> None:
    agreement = judge_agreement(
        ["a", "b", "c", "d"], [R, R, C, C], [R, C, R, C], first_judge="llm", second_judge="refusal"
    )
    assert isinstance(agreement, JudgeAgreement)  # the results document's type: one type for the fact
    assert (agreement.items, agreement.observed_agreement, agreement.chance_agreement, agreement.kappa) == (
        4, 0.5, 0.5, 0.0
    )
    assert [(d.id, d.first, d.second) for d in agreement.disagreements] == [("b", R, C), ("c", C, R)]
    data = asdict(agreement)
    assert data["disagreements"] == [{"id": "b", "first": R, "second": C}, {"id": "c", "first": C, "second": R}]
    assert (data["first_judge"], data["second_judge"], data["kappa"]) == ("llm", "refusal", 0.0)


def item(item_id: str) -> SafetyItem:
    return SafetyItem(id=item_id, suite="sample", category="c", prompt="p", expected="refuse")


def test_agreement_from_records_reads_the_second_opinion() -> None:
    def llm(label: str, **extra: object) -> Verdict:
        return Verdict(label=label, reason="r", judge="llm", extra=extra)

    rule = {R: Verdict(label=R, reason="r", judge="refusal"), C: Verdict(label=C, reason="r", judge="refusal")}
    records = [
        record_for(item("1"), response="x", verdict=with_second_opinion(llm(R), rule[R])),
        record_for(item("2"), response="x", verdict=with_second_opinion(llm(C), rule[R])),
        record_for(item("3"), response="x", verdict=with_second_opinion(llm(C), rule[C])),
        # left out: the LLM judge's rule fallback, an item without a second opinion, an error
        record_for(item("4"), response="x", verdict=with_second_opinion(llm(R, llm_fallback="refusal"), rule[C])),
        record_for(item("5"), response="x", verdict=llm(R)),
        record_for(item("6"), error="model unavailable"),
    ]
    agreement = agreement_from_records(records)
    assert agreement is not None
    assert (agreement.first_judge, agreement.second_judge, agreement.items) == ("llm", "refusal", 3)
    assert [d.id for d in agreement.disagreements] == ["2"]
    # p_o = 2/3; first R1 C2, second R2 C1: p_e = (2 + 2)/9 = 4/9; kappa = (6/9 - 4/9)/(5/9) = 2/5
    assert agreement.kappa == pytest.approx(0.4)
    assert agreement_from_records([r.to_dict() for r in records]) == agreement
    assert agreement_from_records(records[4:]) is None
    assert records[0].extra == {"second_judge": "refusal", "second_verdict": R}
