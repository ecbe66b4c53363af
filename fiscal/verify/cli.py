"""``tillbox verify``: verify a data dir's journal and print every finding.

Human output is one line per finding (seq, chain, chain_seq, code, message) and a summary line;
a progress bar goes to stderr for long journals when stderr is a terminal. ``--json`` prints the
report as one JSON object. Exit status: 0 clean, 1 findings, 2 no journal in the data dir.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fiscal.verify import verify_data_dir
from fiscal.verify.findings import Finding, Report
from fiscal.verify.source import count_entries, journal_path

EXIT_CLEAN, EXIT_FINDINGS, EXIT_NO_JOURNAL = 0, 1, 2
PROGRESS_FROM = 10_000
"""Journals shorter than this verify in a few seconds; no progress bar."""


@contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback moving a progress bar on stderr to ``n`` entries (or ``None``)."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    # No refresh thread: workers then start by a plain fork (see fiscal.verify.engine).
    with Progress(*columns, console=Console(stderr=True), transient=True,
                  auto_refresh=False) as progress:
        task = progress.add_task("verify", total=total)
        yield lambda done: progress.update(task, completed=done, refresh=True)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def finding_line(finding: Finding) -> str:
    """One finding as a line of text."""
    return "\t".join([_cell(finding.seq), _cell(finding.chain), _cell(finding.chain_seq),
                      finding.code, finding.message])


def summary_line(report: Report) -> str:
    """The last line of the human output."""
    chains = ", ".join(f"{chain} {count}" for chain, count in report.chain_counts.items())
    verdict = "clean" if report.ok else f"{len(report.findings)} finding(s)"
    return f"{report.entry_count} entries ({chains or 'none'}): {verdict}"


def _show_progress(total: int, json_output: bool) -> bool:
    return not json_output and total >= PROGRESS_FROM and sys.stderr.isatty()


def run_verify(data_dir: Path, json_output: bool, workers: int | None) -> int:
    """Verify ``data_dir``'s journal, print the outcome and return the exit status."""
    if not journal_path(data_dir).is_file():
        print(f"no journal in {data_dir}", file=sys.stderr)
        return EXIT_NO_JOURNAL
    total = count_entries(data_dir)
    with progress_bar(total, _show_progress(total, json_output)) as progress:
        report = verify_data_dir(data_dir, workers=workers, progress=progress)
    if json_output:
        sys.stdout.write(orjson.dumps(report.to_json()).decode() + "\n")
    else:
        for finding in report.findings:
            print(finding_line(finding))
        print(summary_line(report))
    return EXIT_CLEAN if report.ok else EXIT_FINDINGS
