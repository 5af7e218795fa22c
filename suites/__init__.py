"""Bundled suite data: manifests and the small sample suite (installed as pytest_vlmsafety.bundled_suites)."""
