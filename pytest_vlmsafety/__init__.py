"""pytest-vlmsafety: run vision-language-model safety benchmarks as pytest tests."""

__version__ = "0.1.0"
