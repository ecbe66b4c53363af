"""The appliance image's recipe (image/): its files agree with each other and with systemd/.

These checks are fast and need no build: the image itself is built and booted by image/build
and image/test (see image/README.md).
"""

from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "image"
SYSTEMD = ROOT / "systemd"
SCRIPTS = IMAGE / "rootfs/usr/lib/tillbox"
EXECUTABLES = ("build", "test", "compare", "hooks/customize", "rootfs/usr/lib/tillbox/firstboot",
               "rootfs/usr/lib/tillbox/mark-good", "rootfs/usr/lib/tillbox/boot-state")
PARTITIONS = ["tillbox-boot", "tillbox-root-a", "tillbox-root-b", "tillbox-data"]
GPT_TYPES = {"tillbox-boot": "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
             "tillbox-root-a": "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
             "tillbox-root-b": "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
             "tillbox-data": "0fc63daf-8483-4772-8e79-3d69d8477de4"}
# The only hosts the build may reach: Debian's mirror (apt). PyPI is pip's default index.
ALLOWED_HOSTS = {"deb.debian.org"}
BUILD_FILES = ("build", "hooks/customize", "packages/common", "packages/amd64", "packages/arm64",
               "packages/build")


def genimage_partitions(text: str) -> dict[str, dict[str, str]]:
    """Each ``partition NAME { key = "value" ... }`` block of a genimage configuration."""
    blocks = {}
    for name, body in re.findall(r"partition\s+(\S+)\s*\{(.*?)\}", text, re.S):
        blocks[name] = dict(re.findall(r'([\w-]+)\s*=\s*"?([^"\n]+?)"?\s*$', body, re.M))
    return blocks


def ini_sections(text: str) -> dict[str, dict[str, str]]:
    """A RAUC-style ini file: ``[section]`` → ``key=value`` (comments dropped)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return sections


def fstab(arch: str) -> list[list[str]]:
    """The fields of each line of the image's fstab."""
    return [line.split() for line in (IMAGE / "fstab" / arch).read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def load_script(path: Path) -> ModuleType:
    """A Python script without the .py suffix, imported as a module."""
    loader = importlib.machinery.SourceFileLoader(path.name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module


def test_recipe_scripts_exist_and_are_executable() -> None:
    """The build, test and compare commands and the scripts of the image are executables."""
    for name in EXECUTABLES:
        path = IMAGE / name
        assert path.is_file(), name
        assert os.access(path, os.X_OK), f"{name} is not executable"


def test_shell_scripts_parse() -> None:
    """Every shell script of the recipe is valid Bash/sh syntax."""
    for name in ("build", "hooks/customize", "rootfs/usr/lib/tillbox/firstboot",
                 "rootfs/usr/lib/tillbox/boot-state"):
        result = subprocess.run(["bash", "-n", str(IMAGE / name)], capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, f"{name}: {result.stderr}"


def firstboot(call: str) -> subprocess.CompletedProcess[str]:
    """Run one function of the first-boot script (sourced: it defines and does nothing)."""
    env = {**os.environ, "TILLBOX_IMAGE_ENV": "/nonexistent"}
    command = ["bash", "-c", f'source "$1"; {call}', "test", str(SCRIPTS / "firstboot")]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                          timeout=30)


@pytest.mark.parametrize(("box_id", "name"), [
    ("shop12-till1", "shop12-till1"), ("Shop_12.Till-1", "shop-12-till-1"),
    ("-x-", "x"), ("a" * 64, "a" * 63)])
def test_firstboot_host_name_follows_the_box_id(box_id: str, name: str) -> None:
    """The host name is the box id made a DNS label: lower case, hyphens, 63 characters."""
    result = firstboot(f"host_name '{box_id}'")
    assert (result.returncode, result.stdout) == (0, name + "\n"), result.stderr


@pytest.mark.parametrize(("box_id", "valid"), [
    ("qemu-test-1", True), ("a.b_c-9", True), ("", False), ("-lead", False),
    ("sp ace", False), ("x" * 65, False), ("semi;colon", False)])
def test_firstboot_accepts_box_ids_as_the_fleet_does(box_id: str, valid: bool) -> None:
    """The box ids taken from the boot partition follow the fleet's rule for box ids."""
    assert (firstboot(f"valid_box_id '{box_id}'").returncode == 0) is valid


def test_units_installed_by_the_image_are_in_systemd_dir() -> None:
    """Every unit file the customize hook installs or enables from systemd/ exists there."""
    hook = (IMAGE / "hooks/customize").read_text()
    installed = set(re.findall(r"\$REPO/systemd/([\w.@-]+)", hook))
    assert {"tillbox-agent.service", "tillbox-firstboot.service", "tillbox-mark-good.service",
            "tillbox.sysusers", "tillbox.tmpfiles", "99-tillbox.rules",
            "mosquitto-tillbox.conf"} <= installed
    for name in installed:
        assert (SYSTEMD / name).is_file(), name
    enabled = re.search(r"systemctl enable -q (.*?)\n\s*# ", hook, re.S)
    assert enabled, "no systemctl enable line"
    ours = {unit for unit in enabled.group(1).replace("\\", " ").split() if "tillbox" in unit}
    assert ours == {"tillbox-agent.service", "tillbox-firstboot.service",
                    "tillbox-mark-good.service"}
    assert ours <= installed


def test_units_run_the_scripts_of_the_image() -> None:
    """The first-boot and mark-good units run scripts that the image installs."""
    for unit, script in (("tillbox-firstboot.service", "firstboot"),
                         ("tillbox-mark-good.service", "mark-good")):
        text = (SYSTEMD / unit).read_text()
        assert f"ExecStart=/usr/lib/tillbox/{script}\n" in text
        assert (SCRIPTS / script).is_file()


def test_genimage_has_the_four_partitions() -> None:
    """The amd64 disk: boot (ESP), root A, root B, data, in that order, with GPT types."""
    text = (IMAGE / "genimage/amd64.cfg.in").read_text()
    blocks = genimage_partitions(text)
    assert list(blocks) == PARTITIONS
    assert {name: block["partition-type-uuid"] for name, block in blocks.items()} == GPT_TYPES
    assert 'partition-table-type = "gpt"' in text
    assert blocks["tillbox-root-a"]["size"] == blocks["tillbox-root-b"]["size"]
    assert len({block["partition-uuid"] for block in blocks.values()}) == 4


def test_grub_boots_the_partitions_of_the_disk() -> None:
    """GRUB's slots are the disk's 2nd and 3rd partitions, by their partition UUIDs."""
    blocks = genimage_partitions((IMAGE / "genimage/amd64.cfg.in").read_text())
    grub = (IMAGE / "grub/grub.cfg").read_text()
    slot_a = re.search(r"part=gpt2\s+partuuid=(\S+)", grub)
    slot_b = re.search(r"part=gpt3\s+partuuid=(\S+)", grub)
    assert slot_a
    assert slot_b
    assert slot_a.group(1) == blocks["tillbox-root-a"]["partition-uuid"]
    assert slot_b.group(1) == blocks["tillbox-root-b"]["partition-uuid"]
    assert "rauc.slot=$1" in grub
    for variable in ("A_OK", "A_TRY", "B_OK", "B_TRY", "ORDER", "TILLBOX_ARGS"):
        assert variable in grub


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_rauc_names_the_two_slots(arch: str) -> None:
    """system.conf: two root slots A and B on the disk's labelled partitions, signed bundles."""
    conf = ini_sections((IMAGE / f"rauc/system-{arch}.conf").read_text())
    assert conf["system"]["compatible"] == f"tillbox-{arch}"
    assert conf["system"]["bootloader"] == "custom"
    assert conf["system"]["data-directory"].startswith("/data/")
    assert conf["keyring"]["path"] == "/etc/rauc/keyring.pem"
    roots = {section: conf[section] for section in ("slot.rootfs.0", "slot.rootfs.1")}
    assert [slot["bootname"] for slot in roots.values()] == ["A", "B"]
    # arm64 is an MBR disk (no partition labels): PARTUUIDs, see tests/test_image_arm64.py.
    devices = {"amd64": ["/dev/disk/by-partlabel/tillbox-root-a",
                         "/dev/disk/by-partlabel/tillbox-root-b"],
               "arm64": ["/dev/disk/by-partuuid/3c5e9a17-05", "/dev/disk/by-partuuid/3c5e9a17-06"]}
    assert [slot["device"] for slot in roots.values()] == devices[arch]
    backend = conf["handlers"]["bootloader-custom-backend"]
    assert backend.startswith("/usr/lib/tillbox/")
    assert (SCRIPTS / Path(backend).name).is_file()


def test_manifest_matches_the_system() -> None:
    """Bundles are built for the systems' ``compatible`` and carry the root file system."""
    manifest = ini_sections((IMAGE / "rauc/manifest.raucm.in").read_text())
    assert manifest["update"]["compatible"] == "tillbox-@ARCH@"
    assert manifest["bundle"]["format"] == "verity"
    assert manifest["image.rootfs"]["filename"] == "rootfs.ext4"


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_fstab_mounts_data_and_binds_the_writable_paths(arch: str) -> None:
    """Writable state comes from the data partition; the partitions are found by label."""
    lines = fstab(arch)
    sources = {fields[0] for fields in lines if fields[0].startswith(("PARTLABEL=", "PARTUUID="))}
    # arm64 is an MBR disk (no partition labels): PARTUUIDs, see tests/test_image_arm64.py.
    assert sources == {"amd64": {"PARTLABEL=tillbox-boot", "PARTLABEL=tillbox-data"},
                       "arm64": {"PARTUUID=3c5e9a17-01", "PARTUUID=3c5e9a17-07"}}[arch]
    binds = {fields[1]: fields[0] for fields in lines if "bind" in fields[3]}
    assert binds["/var/lib/tillbox"] == "/data/tillbox"
    assert binds["/etc/tillbox"] == "/data/etc/tillbox"
    assert all(source.startswith("/data/") for source in binds.values())
    assert not any(fields[1] == "/" for fields in lines), "the root is mounted by the kernel"
    build = (IMAGE / "build").read_text()
    for source in binds.values():
        assert f'"$data/{source.removeprefix("/data/")}"' in build, f"{source} not made"


def test_build_reaches_only_debian_and_pypi() -> None:
    """No URL but Debian's mirror in the build, no downloader, pip on its default index."""
    text = "\n".join((IMAGE / name).read_text() for name in BUILD_FILES)
    hosts = set(re.findall(r"https?://([^/\s\"'$]+)", text))
    assert hosts == ALLOWED_HOSTS
    assert not re.search(r"\b(curl|wget|git clone|docker|losetup|mount -o loop)\b", text)
    assert re.search(r"--index-url\s+\"\$TILLBOX_PIP_INDEX_URL\"", text)
    assert "--extra-index-url" not in text


def test_nothing_device_unique_is_left_in_the_root() -> None:
    """The customize hook empties the machine id and removes SSH host keys and the resolver."""
    hook = (IMAGE / "hooks/customize").read_text()
    assert ': >"$ROOT/etc/machine-id"' in hook
    assert 'rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT"/etc/ssh/ssh_host_*' in hook
    assert "restore_resolver" in hook


def test_build_usage_needs_no_root() -> None:
    """`image/build --help` prints its usage (and exits 2) anywhere."""
    result = subprocess.run([str(IMAGE / "build"), "--help"], capture_output=True, text=True,
                            check=False, timeout=30)
    assert result.returncode == 2
    assert "--arch" in result.stderr
    assert "--bundle" in result.stderr


needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")


@needs_analyze
@pytest.mark.parametrize("unit", ["tillbox-firstboot.service", "tillbox-mark-good.service"])
def test_image_units_verify_clean(tmp_path: Path, unit: str) -> None:
    """`systemd-analyze verify` accepts the image's units (scripts taken from the recipe)."""
    text = (SYSTEMD / unit).read_text().replace("ExecStart=/usr/lib/tillbox/",
                                                f"ExecStart={SCRIPTS}/")
    (tmp_path / unit).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""


@pytest.fixture
def grubenv(tmp_path: Path) -> Path:
    """A fresh GRUB environment block as the image ships it (slot A good, B empty)."""
    if shutil.which("grub-editenv") is None:
        pytest.skip("grub-editenv is not installed")
    path = tmp_path / "grubenv"
    subprocess.run(["grub-editenv", str(path), "create"], check=True)
    subprocess.run(["grub-editenv", str(path), "set", "ORDER=A B", "A_OK=1", "A_TRY=0",
                    "B_OK=0", "B_TRY=0"], check=True)
    return path


def boot_state(grubenv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TILLBOX_GRUBENV": str(grubenv), "TILLBOX_IMAGE_ENV": "/nonexistent"}
    return subprocess.run([str(SCRIPTS / "boot-state"), *args], capture_output=True, text=True,
                          env=env, check=False, timeout=30)


def env_block(grubenv: Path) -> dict[str, str]:
    lines = boot_state(grubenv, "show").stdout.splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_boot_state_install_gives_one_trial_boot(grubenv: Path) -> None:
    """RAUC's set-primary after an install: B first, bootable, on trial; A stays good."""
    assert boot_state(grubenv, "get-primary").stdout == "A\n"
    assert boot_state(grubenv, "set-primary", "B").returncode == 0
    assert env_block(grubenv) == {"ORDER": "B A", "A_OK": "1", "A_TRY": "0", "B_OK": "1",
                                  "B_TRY": "1"}
    assert boot_state(grubenv, "get-primary").stdout == "B\n"
    assert boot_state(grubenv, "in-trial", "B").returncode == 0
    assert boot_state(grubenv, "in-trial", "A").returncode == 1


def test_boot_state_mark_good_confirms_and_mark_bad_disables(grubenv: Path) -> None:
    """good ends the trial for good; bad makes the slot unbootable, the other primary."""
    boot_state(grubenv, "set-primary", "B")
    assert boot_state(grubenv, "set-state", "B", "good").returncode == 0
    assert boot_state(grubenv, "in-trial", "B").returncode == 1
    assert boot_state(grubenv, "get-state", "B").stdout == "good\n"
    assert boot_state(grubenv, "set-state", "B", "bad").returncode == 0
    assert boot_state(grubenv, "get-state", "B").stdout == "bad\n"
    assert boot_state(grubenv, "get-primary").stdout == "A\n"


def test_boot_state_refuses_unknown_slots_and_states(grubenv: Path) -> None:
    """Only A and B, only good and bad; nothing is written on a refusal."""
    before = grubenv.read_bytes()
    assert boot_state(grubenv, "set-primary", "C").returncode == 2
    assert boot_state(grubenv, "set-state", "A", "fine").returncode == 2
    assert boot_state(grubenv, "frobnicate").returncode == 2
    assert grubenv.read_bytes() == before


def test_boot_state_keeps_the_box_kernel_arguments(grubenv: Path) -> None:
    """The first boot's machine id and host name reach GRUB's TILLBOX_ARGS."""
    args = "systemd.machine_id=0123456789abcdef0123456789abcdef systemd.hostname=shop-1"
    assert boot_state(grubenv, "set-args", args).returncode == 0
    assert env_block(grubenv)["TILLBOX_ARGS"] == args
    assert len(grubenv.read_bytes()) == 1024, "GRUB only rewrites a block in place"


class Agent(http.server.HTTPServer):
    """A stand-in agent whose /health answers ``answer`` (status, document)."""

    answer: tuple[int, dict[str, str]] = (503, {})


class Health(http.server.BaseHTTPRequestHandler):
    """The stand-in agent's request handler."""

    server: Agent

    def do_GET(self) -> None:
        status, document = self.server.answer
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def agent() -> Iterator[Agent]:
    server = Agent(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_mark_good_trusts_only_an_ok_health(agent: Agent) -> None:
    """mark-good's probe: 200 with status ok is healthy; alarm or 503 (starting) is not."""
    mark_good = load_script(SCRIPTS / "mark-good")
    url = f"http://127.0.0.1:{agent.server_address[1]}/health"
    agent.answer = (200, {"status": "ok", "version": "1.2.3"})
    assert mark_good.check_health(url) == (True, "status ok, version 1.2.3")
    agent.answer = (200, {"status": "alarm", "version": "1.2.3"})
    assert mark_good.check_health(url)[0] is False
    agent.answer = (503, {"status": "ok"})
    assert mark_good.check_health(url) == (False, "HTTP 503")


def test_mark_good_waits_for_the_agent_on_its_port(agent: Agent,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's port comes from its settings; a healthy answer ends the wait at once."""
    mark_good = load_script(SCRIPTS / "mark-good")
    monkeypatch.setenv("TILLBOX_HTTP__PORT", str(agent.server_address[1]))
    agent.answer = (200, {"status": "ok", "version": "1.2.3"})
    assert mark_good.wait_until_healthy(timeout=5, max_restarts=10**6, poll=0.05) is True
    agent.answer = (503, {"status": "ok"})
    assert mark_good.wait_until_healthy(timeout=0.3, max_restarts=10**6, poll=0.05) is False
