"""``tillbox fleet``: the commands end to end, and the broker files they render."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app


def tillbox(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["fleet", *map(str, args)])
    return result.exit_code, result.output


def test_provisioning_from_the_command_line(tmp_path: Path) -> None:
    fleet, box, csr = tmp_path / "fleet", tmp_path / "box", tmp_path / "box.csr"
    assert tillbox("init", "--dir", fleet, "--broker-host", "mqtt.example.com",
                   "--broker-host", "192.0.2.7")[0] == 0
    code, out = tillbox("csr", "--data-dir", box, "--box-id", "shop-7")
    assert code == 0
    assert out.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert tillbox("csr", "--data-dir", box, "--box-id", "shop-7", "--out", csr)[0] == 0
    code, out = tillbox("enroll", "--dir", fleet, "--csr", csr, "--tenant", "acme",
                        "--store", "lyon", "--register", "R1")
    bundle = Path(out.strip())
    assert (code, bundle) == (0, fleet / "bundles" / "shop-7.tar.gz")
    code, out = tillbox("apply", "--data-dir", box, bundle)
    assert code == 0
    assert "mqtts://mqtt.example.com:8883" in out
    cloud = tomllib.loads((box / "cloud.toml").read_text())["cloud"]
    assert (cloud["box_id"], cloud["broker"]) == ("shop-7", "mqtts://mqtt.example.com:8883")
    assert tillbox("service", "--dir", fleet, "cloud-ingest-1")[0] == 0
    code, out = tillbox("list", "--dir", fleet, "--json")
    listed = {item["name"]: item for item in json.loads(out)}
    assert (listed["shop-7"]["store_id"], listed["cloud-ingest-1"]["role"]) == ("lyon", "ingest")
    assert tillbox("revoke", "--dir", fleet, "shop-7")[0] == 0
    code, out = tillbox("list", "--dir", fleet)
    assert "shop-7\tbox\trevoked\tacme/lyon/R1\t" in out
    assert tillbox("crl", "--dir", fleet)[0] == 0


def test_refusals_exit_1_with_the_reason(tmp_path: Path) -> None:
    tillbox("csr", "--data-dir", tmp_path / "box", "--box-id", "b1", "--out", tmp_path / "b1.csr")
    for directory in (tmp_path, tmp_path / "missing"):
        code, out = tillbox("enroll", "--dir", directory, "--csr", tmp_path / "b1.csr",
                            "--tenant", "t", "--store", "s", "--register", "r")
        assert code == 1
        assert "not a fleet directory" in out
        assert tillbox("list", "--dir", directory)[0] == 1
    assert not (tmp_path / ".lock").exists()
    assert tillbox("init", "--dir", tmp_path / "f", "--broker-host", "h")[0] == 0
    code, out = tillbox("init", "--dir", tmp_path / "f", "--broker-host", "h")
    assert code == 1
    assert "holds a fleet already" in out
    code, out = tillbox("revoke", "--dir", tmp_path / "f", "nobody")
    assert (code, "no identity 'nobody'" in out) == (1, True)


def test_mosquitto_conf_renders_a_tls_only_broker(tmp_path: Path) -> None:
    fleet, out = tmp_path / "fleet", tmp_path / "broker"
    tillbox("init", "--dir", fleet, "--broker-host", "mqtt.example.com")
    tillbox("service", "--dir", fleet, "ingest-1", "--role", "ingest")
    tillbox("service", "--dir", fleet, "hq", "--role", "hq")
    code, printed = tillbox("mosquitto-conf", "--dir", fleet, "--out", out, "--port", "8884",
                            "--install-dir", "/etc/mosquitto/tillbox")
    assert (code, printed.strip()) == (0, str(out / "mosquitto.conf"))
    conf = (out / "mosquitto.conf").read_text().splitlines()
    for line in ("listener 8884", "allow_anonymous false", "require_certificate true",
                 "use_identity_as_username true", "use_username_as_clientid true",
                 "crlfile /etc/mosquitto/tillbox/crl.pem",
                 "acl_file /etc/mosquitto/tillbox/acl.conf"):
        assert line in conf
    assert stat.S_IMODE((out / "server-key.pem").stat().st_mode) == 0o600
    assert not (out / "ca-key.pem").exists()
    acl = (out / "acl.conf").read_text()
    assert "pattern write tillbox/v1/%u/journal/up" in acl
    assert "pattern read tillbox/v1/%u/cmd/#" in acl
    assert "user ingest-1\ntopic read tillbox/v1/+/journal/up\n" in acl
    assert "user hq\ntopic read tillbox/v1/+/status\n" in acl
    tillbox("revoke", "--dir", fleet, "hq")
    tillbox("mosquitto-conf", "--dir", fleet, "--out", out)
    assert "user hq" not in (out / "acl.conf").read_text()
    assert (out / "crl.pem").read_bytes() == (fleet / "crl.pem").read_bytes()
