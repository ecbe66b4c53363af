"""The fleet CA: create it, load it, and issue client and server certificates from it.

Every certificate is ECDSA P-256 with SHA-256. The CA certificate allows no intermediate
(``pathlen=0``); issued certificates are end-entity certificates with the extended key usage of
their side of the TLS connection (``clientAuth`` for boxes and services, ``serverAuth`` with the
host names in ``subjectAltName`` for the broker).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud.fleet.errors import FleetError
from cloud.fleet.files import new_key, read_key
from cloud.fleet.layout import FleetPaths

CA_VALIDITY = dt.timedelta(days=3650)
Usage = Literal["client", "server"]


@dataclass(frozen=True)
class FleetCa:
    """The CA key and certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class Validity:
    """The period a certificate is valid for."""

    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def days_from(cls, now: dt.datetime, days: int) -> Validity:
        """From five minutes before ``now`` (clock skew) for ``days`` days."""
        start = now - dt.timedelta(minutes=5)
        return cls(start, now + dt.timedelta(days=days))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_ca(fleet_name: str, now: dt.datetime) -> FleetCa:
    """A new self-signed CA for the fleet, valid ten years."""
    key = new_key()
    name = _name(f"tillbox fleet CA {fleet_name}")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return FleetCa(key, cert)


def load_ca(paths: FleetPaths) -> FleetCa:
    """Read the fleet's CA key and certificate."""
    key = read_key(paths.ca_key)
    try:
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    except (OSError, ValueError) as error:
        raise FleetError(f"cannot read the CA certificate {paths.ca_cert}: {error}") from error
    return FleetCa(key, cert)


def issue(ca: FleetCa, common_name: str, public_key: ec.EllipticCurvePublicKey,
          validity: Validity, usage: Usage, hosts: Sequence[str] = ()) -> x509.Certificate:
    """Sign an end-entity certificate for ``common_name`` holding ``public_key``."""
    eku = ExtendedKeyUsageOID.CLIENT_AUTH if usage == "client" else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(ca.cert.subject).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(validity.not_before).not_valid_after(validity.not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(ca=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [_general_name(host) for host in hosts]), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                         decipher_only=False)


def serial_hex(cert: x509.Certificate) -> str:
    """A certificate's serial number as lowercase hex, as the registry stores it."""
    return format(cert.serial_number, "x")
