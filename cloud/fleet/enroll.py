"""Enrollment: sign a box's CSR into a certificate and a provisioning bundle; issue services.

The fleet never sees a box's private key: the box sends a CSR (``tillbox fleet csr``), the fleet
checks it (valid self-signature, P-256 key, CN a valid box id) and issues a client certificate
whose subject it builds itself (CN = box id, nothing copied from the request). Cloud services
(ingest, HQ) run on the fleet's side, so their key is made here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cloud.fleet.acl import ROLES
from cloud.fleet.bundle import Bundle, Manifest
from cloud.fleet.ca import FleetCa, Validity, issue, load_ca, serial_hex
from cloud.fleet.errors import FleetError
from cloud.fleet.files import new_key, private_dir, write_file, write_key
from cloud.fleet.layout import FleetPaths, fleet_lock
from cloud.fleet.registry import (
    Certificate,
    Identity,
    Registry,
    check_label,
    check_name,
    load_registry,
    save_registry,
)

BOX_DAYS = 1095
MAX_CSR = 16 * 1024
PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Placement:
    """Where an enrolled box sells: tenant, store and register ids."""

    tenant_id: str
    store_id: str
    register_id: str


@dataclass(frozen=True)
class Enrollment:
    """The result of enrolling a box: its registry entry, certificate and bundle."""

    identity: Identity
    certificate: x509.Certificate
    bundle: Bundle


def read_csr(pem: bytes) -> tuple[str, ec.EllipticCurvePublicKey]:
    """The box id (CN) and public key of a well-formed, self-signed P-256 CSR."""
    if len(pem) > MAX_CSR:
        raise FleetError("the CSR is too large")
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as error:
        raise FleetError(f"not a PEM certificate signing request: {error}") from error
    if not csr.is_signature_valid:
        raise FleetError("the CSR's signature is invalid")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise FleetError("the CSR's key must be ECDSA P-256")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str):
        raise FleetError("the CSR must name exactly one CN (the box id)")
    return check_name(names[0].value), key


def enroll_box(paths: FleetPaths, csr_pem: bytes, placement: Placement, *,
               days: int = BOX_DAYS, renew: bool = False, validity: Validity | None = None,
               now: dt.datetime | None = None, replaces: str | None = None) -> Enrollment:
    """Sign a box's CSR, record the box in the registry and build its bundle.

    An id already enrolled needs ``renew`` (a new certificate for the same box, or a box
    replacing a revoked one); its earlier certificates keep their state. ``validity`` overrides
    ``days`` (tests sign certificates that expired long ago). ``replaces`` names the revoked
    box of the same placement whose journal this box continues (written into the bundle).
    """
    now = now or dt.datetime.now(dt.UTC)
    box_id, public_key = read_csr(csr_pem)
    for value, what in ((placement.tenant_id, "tenant id"), (placement.store_id, "store id"),
                        (placement.register_id, "register id")):
        check_label(value, what)
    with fleet_lock(paths) as config:
        ca, registry = load_ca(paths), load_registry(paths)
        previous = _previous(registry.find(box_id), renew)
        if replaces is not None:
            _check_replaced(check_name(replaces), registry, box_id, placement)
        cert = issue(ca, box_id, public_key, validity or Validity.days_from(now, days), "client")
        identity = Identity(name=box_id, kind="box", tenant_id=placement.tenant_id,
                            store_id=placement.store_id, register_id=placement.register_id,
                            certificates=(*previous, _record(cert)))
        save_registry(paths, registry.put(identity))
    return Enrollment(identity, cert, _bundle(config.broker_url, ca, identity, cert, replaces))


def _previous(existing: Identity | None, renew: bool) -> tuple[Certificate, ...]:
    if existing is None:
        return ()
    if existing.kind != "box":
        raise FleetError(f"{existing.name!r} is the name of a cloud service")
    if not renew:
        raise FleetError(f"box {existing.name!r} is enrolled already ({existing.state}); "
                         "use --renew to issue it a new certificate")
    return existing.certificates


def _check_replaced(name: str, registry: Registry, box_id: str, placement: Placement) -> None:
    """A box may replace only a revoked box of the same tenant, store and register."""
    if name == box_id:
        raise FleetError(f"box {box_id!r} cannot replace itself")
    replaced = registry.find(name)
    if replaced is None or replaced.kind != "box":
        raise FleetError("--replaces must name an enrolled box")
    if replaced.state != "revoked":
        raise FleetError(f"box {replaced.name!r} is still active: revoke it first "
                         "(`tillbox fleet revoke`), it must not sell on the same chains")
    was = (replaced.tenant_id, replaced.store_id, replaced.register_id)
    if was != (placement.tenant_id, placement.store_id, placement.register_id):
        raise FleetError(f"box {replaced.name!r} was tenant/store/register "
                         f"{'/'.join(map(str, was))}; a replacement keeps the same placement")


def _record(cert: x509.Certificate) -> Certificate:
    return Certificate(serial=serial_hex(cert), not_before=cert.not_valid_before_utc,
                       not_after=cert.not_valid_after_utc)


def _bundle(broker_url: str, ca: FleetCa, identity: Identity, cert: x509.Certificate,
            replaces: str | None) -> Bundle:
    manifest = Manifest(box_id=identity.name, tenant_id=identity.tenant_id or "",
                        store_id=identity.store_id or "",
                        register_id=identity.register_id or "",
                        broker_url=broker_url,
                        not_after=cert.not_valid_after_utc.isoformat(), replaces=replaces)
    return Bundle(manifest=manifest, ca_pem=ca.cert.public_bytes(PEM),
                  cert_pem=cert.public_bytes(PEM))


def enroll_service(paths: FleetPaths, name: str, role: str, *, days: int = BOX_DAYS,
                   now: dt.datetime | None = None) -> Identity:
    """Issue a cloud service's key and certificate into ``services/NAME/`` (key 0600)."""
    now = now or dt.datetime.now(dt.UTC)
    check_name(name, "service name")
    if role not in ROLES:
        raise FleetError(f"unknown role {role!r}: one of {', '.join(sorted(ROLES))}")
    with fleet_lock(paths):
        ca, registry = load_ca(paths), load_registry(paths)
        if registry.find(name) is not None:
            raise FleetError(f"{name!r} is enrolled already; revoke it or choose another name")
        key = new_key()
        cert = issue(ca, name, key.public_key(), Validity.days_from(now, days), "client")
        directory = private_dir(paths.service_dir(name))
        write_key(directory / "key.pem", key)
        write_file(directory / "cert.pem", cert.public_bytes(PEM))
        write_file(directory / "ca.pem", ca.cert.public_bytes(PEM))
        identity = Identity(name=name, kind="service", role=role, certificates=(_record(cert),))
        save_registry(paths, registry.put(identity))
    return identity
