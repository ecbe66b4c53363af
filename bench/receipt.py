"""Receipt benchmark: build and encode a 20-line ticket (document + ESC/POS bytes).

Times ``ticket_document`` (layout of a 20-line French sale on 80 mm paper) followed by
``render_escpos`` (CP858 pinned, native QR, cut), end to end, after a warm-up. Prints µs/op
(mean, p50, p99) and the ratio of the mean to the goal of 5 ms (≤ 1.0 meets it).

Usage: ``.venv/bin/python bench/receipt.py [--runs N] [--warmup N] [--strict]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.receipt.escpos_render import render_escpos
from drivers.receipt.layout import TicketView, ticket_document
from drivers.receipt.samples import french_sale

GOAL_US = 5000.0


def once(view: TicketView) -> int:
    """Build and encode one receipt; return how long it took in nanoseconds."""
    start = time.perf_counter_ns()
    render_escpos(ticket_document(view))
    return time.perf_counter_ns() - start


def micros(samples_ns: list[int]) -> tuple[float, float, float]:
    """Mean, median and 99th percentile in microseconds."""
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.fmean(ordered) / 1000, statistics.median(ordered) / 1000, p99 / 1000


def main(argv: list[str]) -> int:
    """Run the benchmark and print the figures and the ratio to the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args(argv)
    view = french_sale(20)
    size = len(render_escpos(ticket_document(view)))
    for _ in range(args.warmup):
        once(view)
    mean, p50, p99 = micros([once(view) for _ in range(args.runs)])
    ratio = mean / GOAL_US
    print(f"20-line receipt, document + ESC/POS ({size} bytes), {args.runs} runs")
    print(f"  mean {mean:9.1f} µs   p50 {p50:9.1f} µs   p99 {p99:9.1f} µs")
    print(f"  goal {GOAL_US:9.1f} µs   ratio (mean/goal) {ratio:.2f} "
          f"({'met' if ratio <= 1.0 else 'MISSED'})")
    return 1 if args.strict and ratio > 1.0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
