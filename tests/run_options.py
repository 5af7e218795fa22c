"""The run's options as tests build them: from flags, as the command line would give them."""

from __future__ import annotations

from pytest_vlmsafety.plugin.run_options import RunOptions, parse_options


def run_options(flags: dict[str, object] | None = None, /, **given: object) -> RunOptions:
    """`run_options(vlm="tiny-random", vlm_batch_size="4")` parses `--vlm=tiny-random
    --vlm-batch-size=4`; `flags` takes them spelled as flags (`{"--vlm": ...}`)."""
    values = dict(flags or {})
    values.update({"--" + key.replace("_", "-"): value for key, value in given.items()})
    return parse_options(lambda spec: values.get(spec.flag))
