"""Run the benchmarks: `python -m bench` runs every module of this package, `python -m bench
NAME …` only those named. Each module offers `main() -> None`, which prints its measured
figures beside a floor measured in the same run and the ratio; nothing here asserts a timing.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def modules() -> list[str]:
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))


def main(argv: Sequence[str]) -> int:
    available = modules()
    unknown = [name for name in argv if name not in available]
    if unknown:
        print(f"bench: no benchmark named {', '.join(unknown)} (have: {', '.join(available)})")
        return 2
    for name in argv or available:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
