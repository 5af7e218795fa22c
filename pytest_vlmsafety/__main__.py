"""`python -m pytest_vlmsafety cache info|clear [--dir DIR]`: look at or empty the generation cache."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cache import CACHE_FILENAME, Cache
from .output.config import DEFAULT_CACHE_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_vlmsafety", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    cache = commands.add_parser("cache", help="the generation cache")
    cache.add_argument("action", choices=("info", "clear"))
    cache.add_argument(
        "--dir", type=Path, default=Path(DEFAULT_CACHE_DIR), help=f"cache folder (default: {DEFAULT_CACHE_DIR})"
    )
    args = parser.parse_args(argv)

    if not (args.dir / CACHE_FILENAME).is_file():
        print(f"no cache at {args.dir / CACHE_FILENAME}", file=sys.stderr)
        return 0 if args.action == "clear" else 1
    store = Cache(args.dir)
    try:
        if args.action == "clear":
            before = store.info()
            store.clear()
            print(
                f"cleared {before['generations']} generations and {before['judgements']} judgements from {store.path}"
            )
        else:
            print(json.dumps(store.info(), indent=2))
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
