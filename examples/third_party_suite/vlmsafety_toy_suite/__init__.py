"""The `toy` benchmark's registration: its suite, its rule judge, its own option. Its LLM-judge
scheme comes with the suite class (`ToySuite.judge_schemes`). Kept free of heavy imports: the
plugin reads it when pytest starts; the suite module is imported only when `toy` is selected."""

from pytest_vlmsafety import SuiteOption, SuiteRegistration


def level(text: str) -> str:
    """`--toy-level`: which items to load."""
    if text not in ("easy", "hard", "all"):
        raise ValueError("expected easy, hard or all")
    return text


REGISTRATION = SuiteRegistration(
    name="toy",
    suite="vlmsafety_toy_suite.suite:ToySuite",
    judges={"toy-rule": "vlmsafety_toy_suite.suite:ToyRuleJudge"},
    options=(
        SuiteOption("--toy-level", "toy suite: the items to load (easy, hard or all)", default="all", convert=level),
    ),
)
