"""The ``tillbox`` command: the journal tools of ``fiscal`` plus the box's own commands.

``tillbox run`` starts the box daemon in the foreground. Exit status: 0 after a clean stop
(SIGTERM/SIGINT), 1 when the box cannot start, 2 when the configuration is invalid.

The commands are a typer application (``agent.commands``, also reachable here as ``app``). A
plain ``tillbox run`` — only its own options, ``--config``, ``--data-dir``, ``--http`` — starts
the daemon without loading it: typer and the modules of every other command would stay in the
daemon's memory for nothing (~2 MB). Anything else (``--help``, a typo) goes through typer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["daemon_options", "main", "start_daemon"]  # and, loaded on demand, app and run

EXIT_CONFIG = 2
RUN_OPTIONS = {"--config": "config", "--data-dir": "data_dir", "--http": "http"}


def main() -> None:
    """Entry point of the ``tillbox`` console script."""
    options = daemon_options(sys.argv[1:])
    if options is not None:
        raise SystemExit(start_daemon(**options))
    from agent.commands import app as commands

    commands()


def daemon_options(args: list[str]) -> dict[str, Any] | None:
    """``run``'s options if ``args`` is ``run`` with only its own options, else None."""
    if args[:1] != ["run"]:
        return None
    options: dict[str, Any] = {}
    rest = args[1:]
    while rest:
        name, equals, value = rest[0].partition("=")
        if name not in RUN_OPTIONS or (not equals and len(rest) < 2):
            return None
        value, rest = (value, rest[1:]) if equals else (rest[1], rest[2:])
        if not value or value.startswith("-"):
            return None
        options[RUN_OPTIONS[name]] = value
    return {"config": _path(options.get("config")), "data_dir": _path(options.get("data_dir")),
            "http": options.get("http")}


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def start_daemon(config: Path | None, data_dir: Path | None, http: str | None) -> int:
    """Load the settings and run the daemon until it stops; return the exit status."""
    from agent.settings import ConfigError, load_settings

    try:
        settings = load_settings(config, data_dir=data_dir, http=http)
    except ConfigError as error:
        print(f"tillbox: {error}", file=sys.stderr)
        return EXIT_CONFIG
    _import_structlog_without_rich()
    from agent.daemon import main as run_daemon  # the server stack loads only for ``run``

    return run_daemon(settings)


def _import_structlog_without_rich() -> None:
    """Import structlog while hiding rich from it (plain tracebacks in a terminal).

    structlog takes rich, when it can import it, for pretty tracebacks in the console renderer:
    ~4 MB of the daemon's resident memory (rich, pygments, attrs) for a nicety of development
    consoles; in production the daemon logs JSON. rich stays importable for the rest of the
    process (typer's error display).
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes ``import rich`` fail
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


def __getattr__(name: str) -> Any:
    """``app`` and ``run``: the typer application and its ``run`` command, loaded on demand."""
    if name in ("app", "run"):
        import agent.commands

        return getattr(agent.commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
