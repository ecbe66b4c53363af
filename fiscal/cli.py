"""Command line of the journal: ``verify``, ``verify-archive``, ``demo-data``.

Also mounted under ``tillbox``; runnable as ``python -m fiscal``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from fiscal.paths import default_data_dir

app = typer.Typer(help="tillbox certified journal tools.", no_args_is_help=True,
                  add_completion=False)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Journal data directory.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command()
def verify(data_dir: DataDir = None, json_output: Json = False,
           workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None) -> None:
    """Verify every chain, signature, sequence and total of a journal; exit 0 only if clean."""
    from fiscal.verify.cli import run_verify

    raise typer.Exit(run_verify(data_dir or default_data_dir(), json_output, workers))


@app.command("verify-archive")
def verify_archive(path: Path, json_output: Json = False) -> None:
    """Verify a period archive offline; exit 0 only if clean."""
    from fiscal.archive_check import run_verify_archive

    raise typer.Exit(run_verify_archive(path, json_output))


@app.command("archive")
def archive(
    period_from: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    period_to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (closed).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the archive file.")],
    data_dir: DataDir = None,
    operator: Annotated[str, typer.Option(help="Who produces the archive.")] = "admin",
) -> None:
    """Export a closed period as a signed archive (journaled); prints the file's path."""
    from fiscal.archive import export_archive
    from fiscal.errors import FiscalError
    from fiscal.journal import Journal

    async def export() -> Path:
        async with await Journal.open(data_dir or default_data_dir()) as journal:
            _, path = await export_archive(journal, dt.date.fromisoformat(period_from),
                                           dt.date.fromisoformat(period_to), out, operator)
            return path

    try:
        typer.echo(asyncio.run(export()))
    except (FiscalError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


@app.command("demo-data")
def demo_data(
    data_dir: DataDir = None,
    days: Annotated[int, typer.Option(min=1, help="Business days of history.")] = 30,
    sales_per_day: Annotated[int, typer.Option(min=0, help="Sales per day.")] = 40,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
) -> None:
    """Fill a journal with a realistic signed history for demos, tests and benchmarks."""
    from fiscal.demo import generate

    first = dt.date.fromisoformat(start) if start else None
    summary = asyncio.run(generate(data_dir or default_data_dir(), days=days,
                                   sales_per_day=sales_per_day, seed=seed, start=first))
    typer.echo(summary)


def main() -> None:
    """Entry point of ``python -m fiscal``."""
    app()
