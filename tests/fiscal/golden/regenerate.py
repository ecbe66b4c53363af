"""Rewrite the golden vectors (``NN-<name>.json``) from the current code.

Run it ONLY on a deliberate change of the signed format (data-to-sign, content hash, envelope,
canonical JSON, record fields or the scenario itself), and say so in the commit message: every
vector that changes is a change of what auditors verify, and a bumped ``FORMAT_VERSION`` is
usually due. Never run it to make a failing ``test_golden.py`` pass without knowing why.

Usage, from the repository root::

    .venv/bin/python tests/fiscal/golden/regenerate.py

It builds ``scenario.build()`` (fixed key ``test-key.pem``, fixed clock, fixed requests), writes
one file per entry and removes vector files the scenario no longer produces. Review the diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scenario  # noqa: E402  (a sibling script, not a package)


def render(vector: scenario.Vector) -> str:
    """Return the text of a vector file: sorted keys, two-space indent, trailing newline."""
    return json.dumps(vector.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    """Write every vector and delete stale ones."""
    vectors = scenario.build()
    wanted = {vector.file_name for vector in vectors}
    for stale in sorted(HERE.glob("*.json")):
        if stale.name not in wanted:
            stale.unlink()
            print(f"removed {stale.name}")
    for vector in vectors:
        path = HERE / vector.file_name
        text = render(vector)
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        path.write_text(text, encoding="utf-8")
        print(f"{'wrote' if changed else 'same '} {vector.file_name}")


if __name__ == "__main__":
    main()
