"""tillbox's certified local sales journal (NF525).

Money and VAT, records, chains, signatures, closures, archives and the verifier; imports
nothing else of tillbox.

The public surface: ``Journal`` (open a register's journal and write to it), the request
models in ``fiscal.requests``, the errors in ``fiscal.errors`` and ``fiscal.verify``.
"""

__version__ = "0.1.0"
