"""Discovery: classifying udev devices, stable ids, scan diffs, the watcher and the udev rules."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from drivers.discovery import (
    BRIDGES,
    KNOWN_DEVICES,
    SCANNER_VENDORS,
    DeviceCandidate,
    Discovery,
    Kind,
    classify,
    diff,
    scan,
)

RULES = Path(__file__).resolve().parents[2] / "systemd" / "99-tillbox.rules"
USB_PORT = "pci-0000:00:14.0-usb-0:2:1.0"


def tty(vid: str, pid: str, serial: str | None = "A50285BI", **extra: str) -> dict[str, str]:
    """Udev properties of a USB serial port, as udevadm shows them."""
    props = {"SUBSYSTEM": "tty", "DEVNAME": "/dev/ttyUSB0", "ID_VENDOR_ID": vid,
             "ID_MODEL_ID": pid, "ID_PATH": USB_PORT,
             "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0"}
    if serial:
        props["ID_SERIAL_SHORT"] = serial
        props["DEVLINKS"] = f"/dev/serial/by-path/{USB_PORT}-port0 /dev/serial/by-id/usb-x-{serial}"
    return props | extra


def keyboard(vid: str, pid: str) -> dict[str, str]:
    """Udev properties of a keyboard's event node."""
    return {"SUBSYSTEM": "input", "DEVNAME": "/dev/input/event5", "ID_VENDOR_ID": vid,
            "ID_MODEL_ID": pid, "ID_INPUT_KEYBOARD": "1", "ID_INPUT_KEY": "1",
            "ID_PATH": USB_PORT, "ID_SERIAL_SHORT": "17012B0E42"}


def candidate(key: str, kind: Kind = Kind.PRINTER) -> DeviceCandidate:
    return DeviceCandidate(kind, key, f"/dev/{key}", "04b8:0202", "test")


def test_epson_tm_on_usblp_is_a_printer_with_its_port_and_serial_in_the_id() -> None:
    """An Epson TM-T20II seen through usblp is a printer whose id is its USB port plus serial."""
    found = classify({"SUBSYSTEM": "usbmisc", "DEVNAME": "/dev/usb/lp0", "ID_VENDOR_ID": "04B8",
                      "ID_MODEL_ID": "0E15", "ID_PATH": USB_PORT, "ID_SERIAL_SHORT": "X5E7012345",
                      "ID_USB_INTERFACES": ":070102:"})
    assert found is not None
    assert (found.kind, found.vid_pid, found.path) == (Kind.PRINTER, "04b8:0e15", "/dev/usb/lp0")
    assert found.stable_id == f"usbmisc:{USB_PORT}:X5E7012345"
    assert "TM-T20II" in found.reason
    assert not found.needs_probe


def test_unknown_printer_class_device_is_a_printer() -> None:
    """Any device of USB class 07 on usblp is a printer, whatever its maker."""
    found = classify({"SUBSYSTEM": "usbmisc", "DEVNAME": "/dev/usb/lp1", "ID_VENDOR_ID": "0fe6",
                      "ID_MODEL_ID": "811e", "ID_USB_INTERFACES": ":070101:"})
    assert found is not None
    assert found.kind is Kind.PRINTER
    assert "class (07)" in found.reason


@pytest.mark.parametrize("vid_pid", sorted(BRIDGES))
def test_usb_serial_bridge_is_unknown_and_needs_a_probe(vid_pid: str) -> None:
    """Behind a USB-serial bridge may be anything, so it is ``unknown`` and must be probed."""
    found = classify(tty(*vid_pid.split(":")))
    assert found is not None
    assert (found.kind, found.needs_probe) == (Kind.UNKNOWN, True)
    assert "needs a probe" in found.reason
    assert found.path == "/dev/serial/by-id/usb-x-A50285BI"


def test_identical_bridges_in_two_ports_get_two_ids_that_survive_a_replug() -> None:
    """Two identical CH340 (no serial) differ by USB port and keep their ids when replugged."""
    first = tty("1a86", "7523", None)
    second = tty("1a86", "7523", None, ID_PATH="pci-0000:00:14.0-usb-0:3:1.0",
                 DEVNAME="/dev/ttyUSB0")
    replugged = first | {"DEVNAME": "/dev/ttyUSB1"}  # the kernel name changed, the port did not
    ids = [classify(props).stable_id for props in (first, second, replugged)]  # type: ignore[union-attr]
    assert ids[0] != ids[1]
    assert ids[0] == ids[2]


def test_without_udev_database_the_port_comes_from_the_sysfs_path() -> None:
    """With no ID_PATH (no udevd), the USB port is read from DEVPATH."""
    props = tty("0403", "6001")
    del props["ID_PATH"]
    found = classify(props)
    assert found is not None
    assert found.stable_id == "tty:usb-1-2:1.0:A50285BI"


def test_kernel_product_gives_vid_pid_when_udev_ids_are_missing() -> None:
    """A raw USB device's ``PRODUCT`` (hex without zeros) gives the VID:PID."""
    found = classify({"SUBSYSTEM": "usb", "DEVNAME": "/dev/bus/usb/001/004",
                      "PRODUCT": "4b8/202/100", "DEVPATH": "/devices/pci0000:00/usb1/1-2"})
    assert found is not None
    assert (found.kind, found.vid_pid) == (Kind.PRINTER, "04b8:0202")


@pytest.mark.parametrize("vendor", sorted(SCANNER_VENDORS))
def test_keyboard_from_a_scanner_maker_is_a_scanner(vendor: str) -> None:
    """A HID keyboard made by Honeywell, Zebra or Datalogic is a barcode scanner."""
    found = classify(keyboard(vendor, "0b61"))
    assert found is not None
    assert (found.kind, found.path) == (Kind.SCANNER, "/dev/input/event5")


def test_ordinary_keyboard_and_mouse_are_ignored() -> None:
    """A Logitech keyboard and a mouse are not peripherals of the cash box."""
    mouse = keyboard("046d", "c077") | {"ID_INPUT_KEYBOARD": "0", "ID_INPUT_MOUSE": "1"}
    assert classify(keyboard("046d", "c31c")) is None
    assert classify(mouse) is None


def test_scanner_input_parent_without_node_is_ignored() -> None:
    """The ``inputN`` parent of a scanner's event node has no node to open."""
    props = keyboard("0c2e", "0b61")
    del props["DEVNAME"]
    assert classify(props) is None


def test_serial_mode_scanner_is_a_scanner() -> None:
    """A Datalogic scanner in USB-CDC mode (ttyACM) is a scanner, no probe needed."""
    found = classify(tty("05f9", "4204", DEVNAME="/dev/ttyACM0"))
    assert found is not None
    assert (found.kind, found.needs_probe) == (Kind.SCANNER, False)


def test_unknown_usb_serial_device_needs_a_probe_and_builtin_ports_are_ignored() -> None:
    """An unknown CDC-ACM device is probed; ttyS0 (no USB ids) is left to the configuration."""
    found = classify(tty("2341", "0043", DEVNAME="/dev/ttyACM0"))
    assert found is not None
    assert (found.kind, found.needs_probe) == (Kind.UNKNOWN, True)
    assert classify({"SUBSYSTEM": "tty", "DEVNAME": "/dev/ttyS0"}) is None


def test_tillbox_symlink_names_the_kind_of_a_bridge() -> None:
    """A bridge an administrator named ``/dev/tillbox/scale-…`` is a scale opened by that name."""
    props = tty("0403", "6001")
    props["DEVLINKS"] += " /dev/tillbox/serial-A50285BI /dev/tillbox/scale-A50285BI"
    found = classify(props)
    assert found is not None
    assert (found.kind, found.needs_probe, found.path) == (
        Kind.SCALE, False, "/dev/tillbox/scale-A50285BI")


def test_other_usb_devices_are_ignored() -> None:
    """A hub or a USB stick is not a candidate."""
    hub = {"SUBSYSTEM": "usb", "DEVNAME": "/dev/bus/usb/001/001", "ID_VENDOR_ID": "1d6b",
           "ID_MODEL_ID": "0002", "ID_USB_INTERFACES": ":090000:"}
    assert classify(hub) is None


def test_diff_reports_added_removed_and_changed() -> None:
    """Plugged, unplugged and changed devices are reported; unchanged ones are not."""
    kept, gone, new = candidate("kept"), candidate("gone"), candidate("new")
    changed_before, changed_after = candidate("moved"), candidate("moved", Kind.SCALE)
    added, removed = diff({"kept": kept, "gone": gone, "moved": changed_before},
                          {"kept": kept, "new": new, "moved": changed_after})
    assert added == {"new": new, "moved": changed_after}
    assert removed == {"gone": gone, "moved": changed_before}
    assert diff({"kept": kept}, {"kept": kept}) == ({}, {})


def test_scan_of_this_machine_returns_candidates_without_raising() -> None:
    """Listing the real devices of this machine works, whatever is plugged (usually nothing)."""
    found = scan()
    assert isinstance(found, dict)
    assert all(isinstance(dev, DeviceCandidate) and key == dev.stable_id
               for key, dev in found.items())


async def test_discovery_reports_plug_and_unplug_from_periodic_scans() -> None:
    """The watcher reports a device plugged and then unplugged, then nothing more."""
    printer = candidate("p1")
    present: list[dict[str, DeviceCandidate]] = [{}, {"p1": printer}, {}]
    changes: asyncio.Queue[tuple[dict[str, DeviceCandidate], dict[str, DeviceCandidate]]]
    changes = asyncio.Queue()

    def lister() -> dict[str, DeviceCandidate]:
        return present.pop(0) if len(present) > 1 else present[0]

    async def on_change(added: dict[str, DeviceCandidate],
                        removed: dict[str, DeviceCandidate]) -> None:
        await changes.put((added, removed))

    discovery = Discovery(lister, interval=0.01)
    task = asyncio.create_task(discovery.run(on_change))
    try:
        assert await asyncio.wait_for(changes.get(), 10) == ({"p1": printer}, {})
        assert await asyncio.wait_for(changes.get(), 10) == ({}, {"p1": printer})
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert discovery.devices == {}


# --- the udev rules file -------------------------------------------------------------------

PAIR = re.compile(r'\s*([A-Z_]+)(\{[A-Za-z0-9_]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
MATCH_ONLY = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "KERNELS", "ATTR", "ATTRS",
              "DRIVERS", "DRIVER"}
ASSIGN_ONLY = {"GROUP", "MODE", "OWNER", "SYMLINK", "GOTO", "LABEL", "IMPORT", "RUN"}


def rules() -> list[list[tuple[str, str, str]]]:
    """Each rule of the file as (key with attribute, operator, value) triples."""
    parsed = []
    for number, line in enumerate(RULES.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs, position = [], 0
        while position < len(line):
            match = PAIR.match(line, position)
            assert match, f"line {number}: cannot parse {line[position:]!r}"
            key, attr, op, value = match.groups()
            pairs.append((key + (attr or ""), op, value))
            position = match.end()
        parsed.append(pairs)
    return parsed


def test_udev_rules_parse_with_sound_operators() -> None:
    """Every line is a comment or KEY[{attr}] op "value" pairs; matches and assignments in place."""
    parsed = rules()
    assert len(parsed) >= 10
    for rule in parsed:
        for key, op, _ in rule:
            name = key.split("{")[0]
            if name in MATCH_ONLY:
                assert op in ("==", "!="), f"{key}{op}: a match key assigned"
            if name in ASSIGN_ONLY:
                assert op in ("=", "+=", ":="), f"{key}{op}: an assignment key compared"


def test_udev_rules_with_symlink_set_group_and_mode_and_run_nothing() -> None:
    """Each rule naming a device also sets its group and mode 0660; no rule runs a program."""
    for rule in rules():
        keys = {key: value for key, _, value in rule}
        assert not any(key.startswith("RUN") for key in keys)
        if "SYMLINK" in keys or "GROUP" in keys:
            assert keys["SYMLINK" if "SYMLINK" in keys else "GROUP"]
            assert keys.get("GROUP") in {"lp", "dialout", "input"}, rule
            assert keys.get("MODE") == "0660", rule
        if "SYMLINK" in keys:
            assert keys["SYMLINK"].startswith("tillbox/"), rule


def test_udev_rules_gotos_reach_a_label() -> None:
    """Every GOTO jumps to a LABEL that exists after it."""
    labels = [{k: v for k, _, v in rule}.get("LABEL") for rule in rules()]
    for index, rule in enumerate(rules()):
        for key, _, value in rule:
            if key == "GOTO":
                assert value in labels[index + 1:]


def test_udev_rules_cover_the_discovery_tables() -> None:
    """The rules grant access to every bridge, scanner maker and known printer of discovery.py."""
    text = RULES.read_text(encoding="utf-8")
    for vid_pid in BRIDGES:
        vid, pid = vid_pid.split(":")
        assert f'ATTRS{{idVendor}}=="{vid}", ATTRS{{idProduct}}=="{pid}"' in text
    for vendor in SCANNER_VENDORS:
        assert re.search(rf'ATTRS\{{idVendor\}}=="[0-9a-f|]*{vendor}', text)
    for vid_pid in KNOWN_DEVICES:
        vid, pid = vid_pid.split(":")
        assert re.search(rf'idVendor\}}=="{vid}", ATTR\{{idProduct\}}=="[0-9a-f|]*{pid}', text)


def udev_version() -> int:
    """The systemd version of this machine's udevadm, 0 when it has none."""
    if shutil.which("udevadm") is None:
        return 0
    out = subprocess.run(["udevadm", "--version"], capture_output=True, text=True, timeout=10)
    return int(re.match(r"\d+", out.stdout.strip()).group())  # type: ignore[union-attr]


@pytest.mark.skipif(udev_version() < 253, reason="no udevadm verify (needs systemd >= 253)")
def test_udev_rules_are_accepted_by_udevadm_verify() -> None:
    """``udevadm verify`` finds no error in the rules file."""
    result = subprocess.run(["udevadm", "verify", str(RULES)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
