"""Key rotation: a new box key, linked to the old one by an event the old key signs.

The new key is written next to the current one (``box-key.next.pem``) before the rotation event
commits, and moved into place right after; a crash in between is repaired at the next start by
``finish_pending_rotation``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fiscal import jet, keys
from fiscal.records import Event

if TYPE_CHECKING:
    from fiscal.chain import Entry
    from fiscal.journal import Journal

NEXT = ".next"


async def rotate(journal: Journal, operator: str) -> Entry:
    """Rotate the box key of ``journal``; return the rotation event."""
    from fiscal.journal import KEY_DIR, Pending

    directory = journal.data_dir / KEY_DIR
    async with journal.lock:
        now = journal.now()
        old = journal.key
        new = keys.generate(journal.settings.register_id, now)
        keys.save(new, directory, suffix=NEXT)
        public_der = new.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        details = {"old_key_id": old.key_id, "new_key_id": new.key_id,
                   "certificate_pem": new.certificate_pem(),
                   "link_sig": old.sign(b"KEYLINK," + public_der)}
        event = Event(code=jet.KEY_ROTATION, operator=operator,
                      description=jet.label(jet.KEY_ROTATION), details=details)
        entries = await journal.commit([Pending(event)], None, now)
        promote(directory)
        journal.use_key(new)
    return entries[-1]


def promote(directory: Path) -> None:
    """Move the next certificate, then the next key, into place (atomic renames)."""
    for stem in ("box-cert", "box-key"):
        pending = directory / f"{stem}{NEXT}.pem"
        if pending.exists():
            os.replace(pending, directory / f"{stem}.pem")
    keys.fsync_directory(directory)


def _pending_key_id(directory: Path) -> str | None:
    """Return the key id of the pending next key (or certificate), or None if unreadable."""
    key_path, cert_path = directory / f"box-key{NEXT}.pem", directory / f"box-cert{NEXT}.pem"
    try:
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                return None
            return keys.public_key_id(key.public_key())
        cert = keys.load_certificate_pem(cert_path.read_text(encoding="ascii"))
        return keys.public_key_id(keys.certificate_key(cert))
    except (OSError, ValueError, TypeError):
        return None


def finish_pending_rotation(directory: Path, journal_key_id: str) -> None:
    """At start: promote a next key the journal already names, or discard anything else.

    A rotation killed before its event committed leaves an orphan (possibly partial) next key:
    it never signed anything and is deleted. One killed after the commit leaves the journal's
    key (and maybe its certificate) still under the next names: they are moved into place.
    """
    for leftover in directory.glob("*.tmp"):
        leftover.unlink()
    if not any((directory / f"{stem}{NEXT}.pem").exists() for stem in ("box-key", "box-cert")):
        return
    if _pending_key_id(directory) == journal_key_id:
        promote(directory)
        return
    for stem in ("box-key", "box-cert"):
        (directory / f"{stem}{NEXT}.pem").unlink(missing_ok=True)
