"""Revocation: mark an identity's certificates revoked and re-sign the fleet's CRL.

The CRL lists every revoked certificate that has not expired yet. It is valid for
``crl_days`` (``fleet.json``): a broker refuses *every* client once its CRL is past its next
update, so ``tillbox fleet crl`` must re-sign it well before that (a monthly timer).
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from cloud.fleet.ca import FleetCa, load_ca
from cloud.fleet.errors import FleetError
from cloud.fleet.files import write_file
from cloud.fleet.layout import FleetPaths, fleet_lock, load_config
from cloud.fleet.registry import Identity, Registry, load_registry, save_registry


def build_crl(ca: FleetCa, registry: Registry, now: dt.datetime,
              days: int) -> x509.CertificateRevocationList:
    """The CRL of ``registry`` numbered ``registry.crl_number``, valid ``days`` from ``now``."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(now - dt.timedelta(minutes=5))
               .next_update(now + dt.timedelta(days=days))
               .add_extension(x509.CRLNumber(registry.crl_number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    for identity in registry.identities:
        for cert in identity.certificates:
            if cert.revoked_at is not None and cert.not_after > now:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(int(cert.serial, 16))
                    .revocation_date(cert.revoked_at).build())
    return builder.sign(ca.key, hashes.SHA256())


def publish_crl(paths: FleetPaths, ca: FleetCa, registry: Registry, now: dt.datetime) -> None:
    """Sign the next CRL, then write the CRL and the registry (caller holds the lock)."""
    registry = registry.model_copy(update={"crl_number": registry.crl_number + 1})
    crl = build_crl(ca, registry, now, load_config(paths).crl_days)
    write_file(paths.crl, crl.public_bytes(serialization.Encoding.PEM))
    save_registry(paths, registry)


def revoke(paths: FleetPaths, name: str, now: dt.datetime | None = None) -> Identity:
    """Revoke every certificate of ``name`` and re-sign the CRL; return the updated identity."""
    now = now or dt.datetime.now(dt.UTC)
    with fleet_lock(paths):
        registry = load_registry(paths)
        identity = registry.find(name)
        if identity is None:
            raise FleetError(f"no identity {name!r} in the registry")
        certificates = tuple(cert if cert.revoked_at else cert.model_copy(
            update={"revoked_at": now}) for cert in identity.certificates)
        identity = identity.model_copy(update={"state": "revoked",
                                               "certificates": certificates})
        publish_crl(paths, load_ca(paths), registry.put(identity), now)
    return identity


def refresh_crl(paths: FleetPaths, now: dt.datetime | None = None) -> None:
    """Re-sign the CRL with fresh dates (same revoked serials)."""
    with fleet_lock(paths):
        publish_crl(paths, load_ca(paths), load_registry(paths), now or dt.datetime.now(dt.UTC))
