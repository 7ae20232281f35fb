"""Spin one core at 100 % until killed or for ``--seconds N``: the noise benchmarks must stand.

Why (issue 16, Must 3): the headline ratios were measured on shared machines where another
process takes a core at any moment. Running a benchmark beside this shows what such a neighbour
does to it, on purpose and reproducibly::

    .venv/bin/python benchmarks/noise.py --seconds 600 & NOISE=$!
    .venv/bin/python benchmarks/decrypt.py --files 300
    kill $NOISE

It is one Python process in a tight arithmetic loop (one core, since a Python thread holds the
interpreter), and on exit (the time is up, SIGTERM or Ctrl-C) it prints what it did: wall seconds,
CPU seconds, and the share of one core it got.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

__all__ = ["spin"]


class _Stop(Exception):
    """Raised from the signal handler to leave the loop at once."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def spin(seconds: float | None) -> tuple[float, float, int]:
    """Busy-loop until ``seconds`` have passed (None: until a signal); (wall, cpu, loops)."""
    start, cpu_start = time.monotonic(), time.process_time()
    deadline = None if seconds is None else start + seconds
    loops = 0
    value = 0
    try:
        while deadline is None or time.monotonic() < deadline:
            for n in range(100_000):  # a slice of pure computation between clock reads
                value = (value * 31 + n) & 0xFFFFFFFF
            loops += 1
    except (_Stop, KeyboardInterrupt):
        pass
    return time.monotonic() - start, time.process_time() - cpu_start, loops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after N seconds (default: until killed)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    how_long = "until killed" if args.seconds is None else f"for {args.seconds:g} s"
    print(f"noise: spinning one core ({how_long})", flush=True)
    wall, cpu, loops = spin(args.seconds)
    share = cpu / wall if wall > 0 else 0.0
    print(
        f"noise: spun for {wall:.1f} s wall, {cpu:.1f} s CPU ({share:.0%} of one core), "
        f"{loops} x 100,000 loop steps",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
