"""`make bench`: every benchmark, each printing its figures next to the reference measured in the same run.

`python -m bench` runs all; `python -m bench smartup` or `python -m bench luna` one; extra arguments go to it.
"""

from __future__ import annotations

import importlib
import sys

BENCHES = ("smartup", "luna")


def main(argv: list[str]) -> int:
    names = [a for a in argv if a in BENCHES] or list(BENCHES)
    extra = [a for a in argv if a not in BENCHES]
    failed = 0
    for name in names:
        print(f"\n=== benchmark: {name} ===", flush=True)
        module = importlib.import_module(f"bench.{name}")
        sys.argv = [f"bench.{name}", *extra]
        result = module.main()
        failed += 1 if result else 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
