"""JSON Schema of journal entries, shipped in archives.

Regenerate with ``python -m fiscal.schemas.generate``.
"""
