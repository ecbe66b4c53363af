"""The appliance's systemd files: the agent unit verifies and is sandboxed, users, dirs, broker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "tillbox-agent.service"
MAX_EXPOSURE = 2.0
PERIPHERAL_GROUPS = {"dialout", "lp", "input"}
TMPFILES_TYPES = set("fFwdDevqQpLcbCxXrRzZtThHaAm")

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")
# Lines `systemd-analyze verify` may print that say nothing about our unit; none are allowed
# today (systemd 252 prints nothing for it). Add a pattern here only with the reason.
HARMLESS_VERIFY_LINES: tuple[re.Pattern[str], ...] = ()


def unit_entries(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, keys repeated in order (sections ignored)."""
    entries: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def runnable_unit(tmp_path: Path) -> Path:
    """A copy of the unit whose ``ExecStart`` names an executable of this machine."""
    tillbox = Path(sys.executable).with_name("tillbox")
    program = tillbox if tillbox.is_file() else Path(sys.executable)
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={program}", UNIT.read_text(), flags=re.M)
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


@needs_analyze
def test_unit_verifies_clean(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single complaint."""
    unit = runnable_unit(tmp_path)
    result = analyze("verify", "--man=no", unit.name, cwd=tmp_path)
    lines = (result.stdout + result.stderr).splitlines()
    complaints = [line for line in lines
                  if line.strip() and not any(p.search(line) for p in HARMLESS_VERIFY_LINES)]
    assert result.returncode == 0, result.stderr
    assert complaints == []


@needs_analyze
def test_unit_exposure_is_low(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=true` rates the unit's exposure at most 2.0."""
    unit = runnable_unit(tmp_path)
    result = analyze("security", "--offline=true", "--no-pager", unit.name, cwd=tmp_path)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_runs_the_daemon_as_designed() -> None:
    """The unit is a notify service with a watchdog, its own user and no privileges at all."""
    entries = unit_entries(UNIT.read_text())
    expected = {"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30s",
                "Restart": "on-failure", "User": "tillbox", "Group": "tillbox",
                "StateDirectory": "tillbox", "StateDirectoryMode": "0700",
                "ConfigurationDirectory": "tillbox", "CapabilityBoundingSet": "",
                "DevicePolicy": "closed", "ProtectSystem": "strict", "UMask": "0077"}
    assert {key: entries.get(key, [None])[-1] for key in expected} == expected
    assert entries["ExecStart"] == ["/opt/tillbox/venv/bin/tillbox run"]
    assert set(entries["SupplementaryGroups"][0].split()) == PERIPHERAL_GROUPS
    assert "PrivateUsers" not in entries


def test_unit_allows_only_peripheral_devices() -> None:
    """Only serial, USB printer and input device classes are reachable, input read-only."""
    allowed = set(unit_entries(UNIT.read_text())["DeviceAllow"])
    assert allowed == {"char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw",
                       "char-usb_device rw", "char-usbmisc rw", "char-input r"}


def test_udev_groups_are_the_agents_groups() -> None:
    """Every group the udev rules give a device node is one the agent runs in."""
    rules = (SYSTEMD / "99-tillbox.rules").read_text()
    assert set(re.findall(r'GROUP="(\w+)"', rules)) <= PERIPHERAL_GROUPS


def test_sysusers_declares_the_agent_user() -> None:
    """The sysusers file makes the ``tillbox`` system user, a member of the peripheral groups."""
    lines = [line.split() for line in (SYSTEMD / "tillbox.sysusers").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0][:3] == ["u", "tillbox", "-"]
    assert {line[2] for line in lines if line[:2] == ["m", "tillbox"]} == PERIPHERAL_GROUPS


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None,
                    reason="systemd-sysusers is not installed")
def test_sysusers_parses(tmp_path: Path) -> None:
    """`systemd-sysusers --dry-run` on an empty root would create the user without a complaint."""
    (tmp_path / "etc").mkdir()
    result = subprocess.run(["systemd-sysusers", "--dry-run", f"--root={tmp_path}",
                             str(SYSTEMD / "tillbox.sysusers")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "Creating user 'tillbox'" in result.stderr + result.stdout
    assert not re.search(r"ignoring|fail|invalid", result.stderr, re.I), result.stderr


def test_tmpfiles_lines_are_well_formed() -> None:
    """Each tmpfiles line has a known type, an absolute path and an octal mode."""
    for line in (SYSTEMD / "tillbox.tmpfiles").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, path, mode, user, group, *_ = line.split()
        assert kind[0] in TMPFILES_TYPES, line
        assert path.startswith("/"), line
        assert re.fullmatch(r"0[0-7]{3}", mode), line
        assert "" not in (user, group), line


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None or os.geteuid() != 0,
                    reason="needs systemd-tmpfiles and root (it sets owners)")
def test_tmpfiles_create_the_directories(tmp_path: Path) -> None:
    """`systemd-tmpfiles --create` in a scratch root makes the state dir 0700 for the agent."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n"
                                         "tillbox:x:990:990::/:/usr/sbin/nologin\n")
    (tmp_path / "etc/group").write_text("root:x:0:\ntillbox:x:990:\nmosquitto:x:991:\n")
    result = subprocess.run(["systemd-tmpfiles", "--create", f"--root={tmp_path}",
                             str(SYSTEMD / "tillbox.tmpfiles")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    state = (tmp_path / "var/lib/tillbox").stat()
    assert (state.st_mode & 0o7777, state.st_uid) == (0o700, 990)
    assert (tmp_path / "etc/tillbox/mosquitto").stat().st_gid == 991


def mosquitto_listeners() -> list[dict[str, str]]:
    """The options of each ``listener`` block of the box's Mosquitto file, in order."""
    blocks: list[dict[str, str]] = [{}]
    for line in (SYSTEMD / "mosquitto-tillbox.conf").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.strip().partition(" ")
        if key == "listener":
            blocks.append({})
        blocks[-1][key] = value
    return blocks


def test_mosquitto_never_bridges() -> None:
    """The local broker has no bridge: no ``connection`` nor ``address`` line anywhere."""
    keys = {key for block in mosquitto_listeners() for key in block}
    assert not keys & {"connection", "address", "addresses"}
    general = mosquitto_listeners()[0]
    assert (general["persistence"], general["per_listener_settings"]) == ("true", "true")


def test_mosquitto_lan_listener_needs_credentials() -> None:
    """The LAN listener takes per-frontend passwords and ACLs; the agent's listens on loopback."""
    _, lan, local = mosquitto_listeners()
    assert lan["password_file"].startswith("/etc/tillbox/")
    assert lan["acl_file"].startswith("/etc/tillbox/")
    assert lan["allow_anonymous"] == "false"
    assert local["listener"].endswith(" 127.0.0.1")
