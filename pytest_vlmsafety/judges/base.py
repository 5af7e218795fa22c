"""The judge protocol: responses in, verdicts out, batched."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from ..items import SafetyItem, Verdict

# Registry names that more than one module needs: the LLM judge (`--safety-judge=llm`, and the
# `judge` of the verdicts and records it makes) and the generic refusal judge.
LLM_JUDGE_NAME = "llm"
REFUSAL_JUDGE_NAME = "refusal"


class Judge(ABC):
    """Reads responses and says whether each refused, complied, or which label it chose."""

    name: ClassVar[str]

    @abstractmethod
    def judge(self, items: Sequence[SafetyItem], responses: Sequence[str]) -> list[Verdict]:
        """One verdict per (item, response), in order."""


class RuleJudge(Judge):
    """A judge whose rule reads one response at a time."""

    def judge(self, items: Sequence[SafetyItem], responses: Sequence[str]) -> list[Verdict]:
        return [self.judge_one(item, response) for item, response in zip(items, responses, strict=True)]

    @abstractmethod
    def judge_one(self, item: SafetyItem, response: str) -> Verdict:
        """The verdict on one response."""
