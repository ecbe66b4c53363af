"""Fleet provisioning on disk: CA, CSR, enrollment, bundle, apply, registry, revocation."""

from __future__ import annotations

import datetime as dt
import io
import stat
import tarfile
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.settings import CloudSettings
from cloud.fleet.apply import apply_bundle
from cloud.fleet.boxkey import make_csr
from cloud.fleet.bundle import Bundle, read_bundle, write_bundle
from cloud.fleet.create import init_fleet
from cloud.fleet.enroll import Placement, enroll_box, enroll_service
from cloud.fleet.errors import FleetError
from cloud.fleet.layout import FleetPaths
from cloud.fleet.registry import load_registry
from cloud.fleet.revoke import refresh_crl, revoke

NOW = dt.datetime.now(dt.UTC)
SHOP = Placement("acme", "paris-1", "R2")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def crl(paths: FleetPaths) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(paths.crl.read_bytes())


@pytest.fixture
def paths(tmp_path: Path) -> FleetPaths:
    paths = FleetPaths(tmp_path / "fleet")
    init_fleet(paths, "acme", ["broker.example.com", "10.0.0.5"], now=NOW)
    return paths


def enrolled(paths: FleetPaths, data_dir: Path, box_id: str = "box-1", *,
             renew: bool = False) -> Path:
    """Enroll ``box_id`` from a CSR made in ``data_dir``; return the bundle path."""
    result = enroll_box(paths, make_csr(data_dir, box_id), SHOP, renew=renew)
    write_bundle(paths.bundle(box_id), result.bundle)
    return paths.bundle(box_id)


def test_init_makes_the_ca_the_crl_and_the_broker_certificate(paths: FleetPaths) -> None:
    ca, server = cert(paths.ca_cert), cert(paths.server_cert)
    assert (mode(paths.root), mode(paths.ca_key), mode(paths.server_key)) == (0o700, 0o600, 0o600)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca.verify_directly_issued_by(ca)
    server.verify_directly_issued_by(ca)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.example.com"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    revoked = crl(paths)
    assert revoked.is_signature_valid(ca.public_key())
    assert len(revoked) == 0
    assert revoked.next_update_utc is not None
    assert revoked.next_update_utc > NOW + dt.timedelta(days=364)
    assert load_registry(paths).identities == ()
    assert '"broker_url": "mqtts://broker.example.com:8883"' in paths.config.read_text()


def test_a_fleet_is_never_initialised_twice(paths: FleetPaths) -> None:
    key = paths.ca_key.read_bytes()
    with pytest.raises(FleetError, match="holds a fleet already"):
        init_fleet(paths, "acme", ["other"])
    assert paths.ca_key.read_bytes() == key


def test_enroll_and_apply_provision_the_box(paths: FleetPaths, tmp_path: Path) -> None:
    box_dir = tmp_path / "box"
    bundle = enrolled(paths, box_dir)
    keys = box_dir / "keys"
    assert mode(keys / "mqtt-key.pem") == 0o600
    applied = apply_bundle(box_dir, bundle)
    issued = cert(keys / "mqtt-cert.pem")
    assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "box-1"
    issued.verify_directly_issued_by(cert(keys / "fleet-ca.pem"))
    assert (keys / "fleet-ca.pem").read_bytes() == paths.ca_cert.read_bytes()
    assert ExtendedKeyUsageOID.CLIENT_AUTH in issued.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    assert issued.not_valid_after_utc - NOW > dt.timedelta(days=1094)
    [box] = load_registry(paths).identities
    assert (box.name, box.kind, box.state, box.tenant_id, box.store_id, box.register_id) == (
        "box-1", "box", "active", "acme", "paris-1", "R2")
    assert box.serial == format(issued.serial_number, "x")
    settings = tomllib.loads(applied.cloud_toml.read_text())["cloud"]
    assert settings == {"enabled": True, "broker": "mqtts://broker.example.com:8883",
                        "box_id": "box-1", "ca_file": str(keys.resolve() / "fleet-ca.pem"),
                        "cert_file": str(keys.resolve() / "mqtt-cert.pem"),
                        "key_file": str(keys.resolve() / "mqtt-key.pem")}
    assert CloudSettings(**settings).box_id == "box-1"


def test_the_csr_reuses_the_box_key_unless_asked(tmp_path: Path) -> None:
    first = x509.load_pem_x509_csr(make_csr(tmp_path, "box-1")).public_key()
    again = x509.load_pem_x509_csr(make_csr(tmp_path, "box-1")).public_key()
    fresh = x509.load_pem_x509_csr(make_csr(tmp_path, "box-1", fresh=True)).public_key()
    assert first == again != fresh
    with pytest.raises(FleetError, match="invalid box id"):
        make_csr(tmp_path, "box/+")


def test_apply_refuses_a_bundle_made_for_another_key(paths: FleetPaths, tmp_path: Path) -> None:
    bundle = enrolled(paths, tmp_path / "box-1")
    make_csr(tmp_path / "box-2", "box-2")
    with pytest.raises(FleetError, match="another key"):
        apply_bundle(tmp_path / "box-2", bundle)
    assert not (tmp_path / "box-2" / "cloud.toml").exists()
    with pytest.raises(FleetError, match="run `tillbox fleet csr`"):
        apply_bundle(tmp_path / "box-3", bundle)


def test_apply_refuses_a_certificate_not_from_the_bundled_ca(paths: FleetPaths,
                                                             tmp_path: Path) -> None:
    enrolled(paths, tmp_path / "box")
    other = FleetPaths(tmp_path / "other")
    init_fleet(other, "other", ["x"])
    good = read_bundle(paths.bundle("box-1"))
    forged = Bundle(manifest=good.manifest, ca_pem=other.ca_cert.read_bytes(),
                    cert_pem=good.cert_pem)
    write_bundle(tmp_path / "forged.tar.gz", forged)
    with pytest.raises(FleetError, match="not signed by its CA"):
        apply_bundle(tmp_path / "box", tmp_path / "forged.tar.gz")


def test_apply_reads_only_the_bundle_members(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as archive:
        info = tarfile.TarInfo("../../etc/cron.d/x")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(FleetError, match="unexpected member"):
        apply_bundle(tmp_path / "box", evil)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(FleetError, match="not a provisioning bundle"):
        apply_bundle(tmp_path / "box", tmp_path / "junk.tar.gz")


def csr_for(key: ec.EllipticCurvePrivateKey, *names: str) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name) for name in names])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(
        key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(("csr", "error"), [
    (b"junk", "not a PEM"),
    (csr_for(ec.generate_private_key(ec.SECP256R1()), "box/#"), "invalid box id"),
    (csr_for(ec.generate_private_key(ec.SECP256R1()), "a", "b"), "exactly one CN"),
    (csr_for(ec.generate_private_key(ec.SECP384R1()), "box-1"), "P-256"),
])
def test_enroll_refuses_a_bad_csr(paths: FleetPaths, csr: bytes, error: str) -> None:
    with pytest.raises(FleetError, match=error):
        enroll_box(paths, csr, SHOP)
    assert load_registry(paths).identities == ()


def test_names_are_unique_across_boxes_and_services(paths: FleetPaths, tmp_path: Path) -> None:
    enrolled(paths, tmp_path / "box")
    with pytest.raises(FleetError, match="--renew"):
        enrolled(paths, tmp_path / "box")
    with pytest.raises(FleetError, match="enrolled already"):
        enroll_service(paths, "box-1", "ingest")
    enroll_service(paths, "cloud-ingest", "ingest")
    with pytest.raises(FleetError, match="cloud service"):
        enrolled(paths, tmp_path / "svc", "cloud-ingest", renew=True)
    with pytest.raises(FleetError, match="unknown role"):
        enroll_service(paths, "x", "admin")
    service_dir = paths.service_dir("cloud-ingest")
    assert mode(service_dir / "key.pem") == 0o600
    assert [item.name for item in load_registry(paths).identities] == ["box-1", "cloud-ingest"]


def test_revoke_lists_every_certificate_of_the_box_in_the_crl(paths: FleetPaths,
                                                               tmp_path: Path) -> None:
    enrolled(paths, tmp_path / "box")
    enrolled(paths, tmp_path / "box", renew=True)
    serials = {int(c.serial, 16) for c in load_registry(paths).identities[0].certificates}
    number = crl(paths).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    revoked = revoke(paths, "box-1")
    assert revoked.state == "revoked"
    listed = crl(paths)
    assert {entry.serial_number for entry in listed} == serials
    assert listed.is_signature_valid(cert(paths.ca_cert).public_key())
    assert listed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1
    refresh_crl(paths)
    assert {entry.serial_number for entry in crl(paths)} == serials
    with pytest.raises(FleetError, match="no identity"):
        revoke(paths, "box-9")


def test_a_revoked_box_id_can_be_enrolled_again_with_renew(paths: FleetPaths,
                                                           tmp_path: Path) -> None:
    enrolled(paths, tmp_path / "box")
    revoke(paths, "box-1")
    enrolled(paths, tmp_path / "new-box", renew=True)
    [box] = load_registry(paths).identities
    assert box.state == "active"
    assert [c.revoked_at is not None for c in box.certificates] == [True, False]
    assert len(crl(paths)) == 1
