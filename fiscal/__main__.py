"""``python -m fiscal``: the journal's command line."""

from fiscal.cli import main

main()
