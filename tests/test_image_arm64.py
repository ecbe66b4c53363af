"""The Raspberry Pi (arm64) side of the appliance image: layout, boot files and tryboot A/B state.

The real ``boot-state-tryboot`` script runs against plain directories standing in for the
shared boot partition and the slots' boot partitions; the slots' files are made by the real
functions of ``image/build`` from a fake root file system. No image is built here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_image_recipe import ini_sections

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "image"
BUILD = IMAGE / "build"
BACKEND = IMAGE / "rootfs/usr/lib/tillbox/boot-state-tryboot"
PARTITIONS = ["tillbox-boot", "tillbox-boot-a", "tillbox-boot-b", "tillbox-root-a",
              "tillbox-root-b", "tillbox-data"]
# MBR numbering: 1-3 primary, 4 the extended partition, 5-7 logical ones inside it.
NUMBERS = {"tillbox-boot": 1, "tillbox-boot-a": 2, "tillbox-boot-b": 3, "tillbox-root-a": 5,
           "tillbox-root-b": 6, "tillbox-data": 7}
KERNEL = "6.1.0-99-arm64"
BOX_ARGS = "systemd.machine_id=0123456789abcdef0123456789abcdef systemd.hostname=shop-1"


def genimage_config() -> str:
    """The arm64 genimage configuration (a template of image/build)."""
    return (IMAGE / "genimage/arm64.cfg.in").read_text()


def genimage_partitions() -> dict[str, dict[str, str]]:
    """Each ``partition NAME { key = value ... }`` block of the arm64 genimage configuration."""
    blocks = {}
    for name, body in re.findall(r"partition\s+(\S+)\s*\{(.*?)\}", genimage_config(), re.S):
        blocks[name] = dict(re.findall(r'([\w-]+)\s*=\s*"?([^"\n]+?)"?\s*$', body, re.M))
    return blocks


def disk_signature() -> str:
    """The MBR disk signature genimage writes, as PARTUUIDs spell it."""
    found = re.search(r"disk-signature\s*=\s*0x([0-9a-f]{8})\b", genimage_config())
    assert found, "no fixed disk signature"
    return found.group(1)


def partuuid(name: str) -> str:
    """The PARTUUID of a partition of the layout: signature and number."""
    return f"{disk_signature()}-{NUMBERS[name]:02x}"


def autoboot(path: Path) -> dict[str, str]:
    """The boot partition of each section of an autoboot.txt (``all``, ``tryboot``)."""
    return {name: section["boot_partition"]
            for name, section in ini_sections(path.read_text()).items()}


def run_build(work: Path, calls: str) -> None:
    """Run functions of image/build (sourced: it defines and does nothing) with WORK set."""
    command = ["bash", "-c", f'source "$1"; WORK="$2"; {calls}', "test", str(BUILD), str(work)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr


def fake_root(work: Path) -> None:
    """The parts of an arm64 root file system that the boot partitions are made from."""
    root = work / "rootfs"
    for name, content in ((f"boot/vmlinuz-{KERNEL}", "kernel"),
                          (f"boot/initrd.img-{KERNEL}", "initrd"),
                          ("usr/lib/raspi-firmware/start4.elf", "firmware"),
                          ("usr/lib/raspi-firmware/fixup4.dat", "fixup"),
                          ("usr/lib/raspi-firmware/start.elf", "pi 1-3 firmware"),
                          (f"usr/lib/linux-image-{KERNEL}/broadcom/bcm2711-rpi-4-b.dtb", "dtb"),
                          (f"usr/lib/linux-image-{KERNEL}/broadcom/bcm2837-rpi-3-b.dtb", "dtb")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)


@dataclass
class Box:
    """A Raspberry Pi's boot partitions and run-time files, as directories and files."""

    shared: Path
    slots: dict[str, Path]
    cmdline: Path
    reboot_param: Path
    bundle_bootfs: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real backend, as RAUC (or firstboot, mark-good) calls it."""
        env = {**os.environ, "TILLBOX_IMAGE_ENV": "/nonexistent",
               "TILLBOX_BOOT_DIR": str(self.shared), "TILLBOX_CMDLINE": str(self.cmdline),
               "TILLBOX_REBOOT_PARAM": str(self.reboot_param),
               "TILLBOX_SLOT_BOOT_A": str(self.slots["A"]),
               "TILLBOX_SLOT_BOOT_B": str(self.slots["B"])}
        return subprocess.run([str(BACKEND), *args], capture_output=True, text=True, env=env,
                              check=False, timeout=30)

    def out(self, *args: str) -> str:
        """What the backend prints, after checking that it succeeded."""
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def boot(self, slot: str) -> None:
        """The firmware starts SLOT: a new boot (/run is empty) with SLOT's command line."""
        self.reboot_param.unlink(missing_ok=True)
        self.cmdline.write_text((self.slots[slot] / "cmdline.txt").read_text())

    def install(self, slot: str) -> None:
        """RAUC installs a bundle into SLOT as RAUC 1.8 does: bad first, write, primary."""
        assert self.run("set-state", slot, "bad").returncode == 0
        shutil.rmtree(self.slots[slot])
        shutil.copytree(self.bundle_bootfs, self.slots[slot])
        assert self.run("set-primary", slot).returncode == 0


@pytest.fixture
def box(tmp_path: Path) -> Box:
    """A freshly flashed box booted from slot A, its partitions as image/build makes them."""
    fake_root(tmp_path)
    run_build(tmp_path, "boot_files_arm64; slot_boot_files_arm64")
    slot_b = tmp_path / "boot-b"
    slot_b.mkdir()
    made = Box(shared=tmp_path / "boot", slots={"A": tmp_path / "bootfs", "B": slot_b},
               cmdline=tmp_path / "cmdline", reboot_param=tmp_path / "run/reboot-param",
               bundle_bootfs=tmp_path / "bundle-bootfs")
    shutil.copytree(made.slots["A"], made.bundle_bootfs)
    made.boot("A")
    return made


def test_fresh_image_boots_a_and_b_is_bad(box: Box) -> None:
    """The image: autoboot.txt commits A (partition 2), no trial; B is empty, hence bad."""
    assert autoboot(box.shared / "autoboot.txt") == {"all": "2", "tryboot": "2"}
    assert (box.out("get-primary"), box.out("get-current")) == ("A", "A")
    assert (box.out("get-state", "A"), box.out("get-state", "B")) == ("good", "bad")
    assert box.run("in-trial", "A").returncode == 1


def test_slot_boot_partition_has_the_pi4_boot_files(box: Box) -> None:
    """Slot A's boot partition: Pi 4 firmware, kernel, initrd, device tree, config, cmdline."""
    files = sorted(path.name for path in box.slots["A"].iterdir())
    assert files == ["bcm2711-rpi-4-b.dtb", "cmdline.txt", "config.txt", "fixup4.dat",
                     "initrd.img", "start4.elf", "vmlinuz"]
    config = (box.slots["A"] / "config.txt").read_text().splitlines()
    for line in ("arm_64bit=1", "enable_uart=1", "kernel=vmlinuz",
                 "initramfs initrd.img followkernel"):
        assert line in config
    cmdline = (box.slots["A"] / "cmdline.txt").read_text()
    assert cmdline.count("\n") == 1, "cmdline.txt is one line"
    assert {f"root=PARTUUID={partuuid('tillbox-root-a')}", "rauc.slot=A", "ro"} <= set(
        cmdline.split())


def test_update_is_tried_once_then_committed_by_mark_good(box: Box) -> None:
    """Install B, tryboot into it, mark it good: autoboot.txt then starts B on every boot."""
    box.install("B")
    cmdline_b = (box.slots["B"] / "cmdline.txt").read_text().split()
    assert {f"root=PARTUUID={partuuid('tillbox-root-b')}", "rauc.slot=B", "ro"} <= set(cmdline_b)
    assert "rauc.slot=A" not in cmdline_b
    assert f"root=PARTUUID={partuuid('tillbox-root-a')}" not in cmdline_b
    assert autoboot(box.shared / "autoboot.txt") == {"all": "2", "tryboot": "3"}
    assert box.reboot_param.read_text() == "0 tryboot\n"
    # What `rauc status` sees before the reboot: B starts next, both slots good.
    assert box.out("get-primary") == "B"
    assert (box.out("get-state", "A"), box.out("get-state", "B")) == ("good", "good")
    box.boot("B")  # the tryboot reboot: the firmware reads [tryboot] and clears its flag
    assert box.out("get-current") == "B"
    assert box.out("get-primary") == "A", "a plain reboot during the trial goes back to A"
    assert box.out("get-state", "B") == "good"
    assert box.run("in-trial", "B").returncode == 0
    assert box.run("set-state", "B", "good").returncode == 0  # rauc status mark-good booted
    assert autoboot(box.shared / "autoboot.txt") == {"all": "3", "tryboot": "3"}
    assert box.out("get-primary") == "B"
    assert box.run("in-trial", "B").returncode == 1
    box.boot("B")
    assert box.out("get-current") == "B"


def test_trial_never_marked_good_falls_back_to_a(box: Box) -> None:
    """A trial boot that dies leaves A committed; mark-bad ends the trial for good."""
    box.install("B")
    box.boot("B")
    # The trial dies (panic, watchdog, power cut): nothing was committed, the firmware's flag
    # is gone, so the next normal boot reads [all]: partition 2, slot A.
    assert autoboot(box.shared / "autoboot.txt")["all"] == "2"
    # Or mark-good gave up: rauc status mark-bad booted, then a plain reboot.
    assert box.run("set-state", "B", "bad").returncode == 0
    assert autoboot(box.shared / "autoboot.txt") == {"all": "2", "tryboot": "2"}
    assert box.out("get-state", "B") == "bad"
    assert box.out("get-primary") == "A"
    assert box.run("in-trial", "B").returncode == 1


def test_mark_bad_before_the_reboot_cancels_the_trial(box: Box) -> None:
    """An install marked bad before any reboot: no trial, no tryboot on the next reboot."""
    box.install("B")
    assert box.run("set-state", "B", "bad").returncode == 0
    assert not box.reboot_param.exists()
    assert autoboot(box.shared / "autoboot.txt") == {"all": "2", "tryboot": "2"}


def test_the_only_committed_slot_is_never_marked_bad(box: Box) -> None:
    """A bad committed A with nothing else booted would leave nothing to boot: refused."""
    before = (box.shared / "autoboot.txt").read_bytes()
    result = box.run("set-state", "A", "bad")
    assert result.returncode == 1
    assert "only committed system" in result.stderr
    assert (box.shared / "autoboot.txt").read_bytes() == before


def test_installing_over_the_committed_slot_commits_the_booted_one(box: Box) -> None:
    """Booted B after a commit, an update goes into A: A is tried, B stays the fallback."""
    box.install("B")
    box.boot("B")
    box.run("set-state", "B", "good")
    box.install("A")
    assert autoboot(box.shared / "autoboot.txt") == {"all": "3", "tryboot": "2"}
    assert box.out("get-primary") == "A"


def test_refuses_unknown_slots_and_states(box: Box) -> None:
    """Only A and B, only good and bad; nothing is written on a refusal."""
    before = (box.shared / "autoboot.txt").read_bytes()
    assert box.run("set-primary", "C").returncode == 2
    assert box.run("set-state", "A", "fine").returncode == 2
    assert box.run("frobnicate").returncode == 2
    assert (box.shared / "autoboot.txt").read_bytes() == before
    assert not box.reboot_param.exists()


def test_set_primary_refuses_a_slot_without_a_system(box: Box) -> None:
    """A slot whose boot partition has no cmdline.txt is not made primary."""
    result = box.run("set-primary", "B")
    assert result.returncode == 1
    assert autoboot(box.shared / "autoboot.txt") == {"all": "2", "tryboot": "2"}


def test_box_arguments_reach_every_slot(box: Box) -> None:
    """set-args (first boot) changes the booted slot's cmdline.txt and the next install's."""
    assert box.run("set-args", BOX_ARGS).returncode == 0
    assert (box.slots["A"] / "cmdline.txt").read_text().rstrip("\n").endswith(BOX_ARGS)
    assert box.run("set-args", BOX_ARGS).returncode == 0
    assert (box.slots["A"] / "cmdline.txt").read_text().count("systemd.hostname=") == 1
    box.install("B")
    cmdline_b = (box.slots["B"] / "cmdline.txt").read_text()
    assert cmdline_b.rstrip("\n").endswith(f"rauc.slot=B {BOX_ARGS}")
    assert BOX_ARGS in box.out("show")


def test_an_interrupted_write_leaves_a_readable_state(box: Box) -> None:
    """A power cut in FAT's rename: a lost autoboot.txt is read from its complete .tmp."""
    path = box.shared / "autoboot.txt"
    box.install("B")
    path.rename(path.with_name("autoboot.txt.tmp"))
    assert box.out("get-primary") == "B"
    assert box.run("set-state", "B", "bad").returncode == 0
    assert autoboot(path) == {"all": "2", "tryboot": "2"}
    assert not path.with_name("autoboot.txt.tmp").exists()


def test_a_stale_temp_file_does_not_override_the_state(box: Box) -> None:
    """A leftover .tmp beside a valid autoboot.txt is what the firmware ignores: so do we."""
    path = box.shared / "autoboot.txt"
    path.with_name("autoboot.txt.tmp").write_text("[all]\nboot_partition=3\n")
    assert box.out("get-primary") == "A"
    path.write_text("garbage\n")
    assert box.out("get-primary") == "B"


def test_autoboot_txt_fits_the_firmware_limit(box: Box) -> None:
    """The firmware reads at most 512 bytes of autoboot.txt."""
    box.install("B")
    assert len((box.shared / "autoboot.txt").read_bytes()) <= 512


def test_genimage_layout_is_mbr_with_the_six_partitions() -> None:
    """MBR (the Pi's firmware), fixed disk signature, the partitions in order, equal slots."""
    blocks = genimage_partitions()
    text = genimage_config()
    assert list(blocks) == PARTITIONS
    assert 'partition-table-type = "mbr"' in text
    assert "extended-partition = 4" in text
    assert {name: blocks[name]["partition-type"] for name in PARTITIONS} == {
        "tillbox-boot": "0x0c", "tillbox-boot-a": "0x0c", "tillbox-boot-b": "0x0c",
        "tillbox-root-a": "0x83", "tillbox-root-b": "0x83", "tillbox-data": "0x83"}
    assert blocks["tillbox-boot-a"]["size"] == blocks["tillbox-boot-b"]["size"] == "@BOOTFS_SIZE@"
    assert blocks["tillbox-root-a"]["size"] == blocks["tillbox-root-b"]["size"] == "@ROOT_SIZE@"
    assert blocks["tillbox-boot-a"]["image"] == "bootfs.vfat"
    assert blocks["tillbox-root-a"]["image"] == "rootfs.ext4"


def test_partuuids_agree_across_fstab_rauc_build_and_backend() -> None:
    """fstab, system.conf, cmdline.txt and the backend name the partitions of the layout."""
    signature = disk_signature()
    fstab = {fields[1]: fields[0] for fields in
             (line.split() for line in (IMAGE / "fstab/arm64").read_text().splitlines())
             if fields and not fields[0].startswith("#")}
    assert fstab["/boot/firmware"] == f"PARTUUID={partuuid('tillbox-boot')}"
    assert fstab["/data"] == f"PARTUUID={partuuid('tillbox-data')}"
    conf = ini_sections((IMAGE / "rauc/system-arm64.conf").read_text())
    devices = {section: conf[section]["device"] for section in conf if section.startswith("slot.")}
    assert devices == {
        "slot.rootfs.0": f"/dev/disk/by-partuuid/{partuuid('tillbox-root-a')}",
        "slot.bootfs.0": f"/dev/disk/by-partuuid/{partuuid('tillbox-boot-a')}",
        "slot.rootfs.1": f"/dev/disk/by-partuuid/{partuuid('tillbox-root-b')}",
        "slot.bootfs.1": f"/dev/disk/by-partuuid/{partuuid('tillbox-boot-b')}"}
    assert conf["slot.bootfs.0"]["parent"] == "rootfs.0"
    assert conf["slot.bootfs.1"]["parent"] == "rootfs.1"
    assert conf["handlers"]["bootloader-custom-backend"] == "/usr/lib/tillbox/boot-state-tryboot"
    assert f"DISK_SIGNATURE={signature}\n" in BUILD.read_text()
    assert f"DISK_SIGNATURE={signature}\n" in BACKEND.read_text()


def test_fat_volume_labels_are_valid() -> None:
    """FAT volume labels: at most 11 characters, upper case letters, digits, - and _."""
    labels = re.findall(r"^\s*fat_image .* (\S+) \"\$\w+VOLUME_ID\"$", BUILD.read_text(), re.M)
    assert sorted(labels) == ["TILLBOX", "TILLBOX-SYS"]
    for label in labels:
        assert re.fullmatch(r"[A-Z0-9_-]{1,11}", label), label


def test_bundle_carries_root_and_boot_of_a_slot() -> None:
    """The arm64 manifest names both images of a slot: rootfs.ext4 and bootfs.vfat."""
    build = BUILD.read_text()
    bootfs = re.search(r"bootfs='(.*)'", build)
    assert bootfs
    template = (IMAGE / "rauc/manifest.raucm.in").read_text()
    manifest = ini_sections(template.replace("@BOOTFS_IMAGE@",
                                             bootfs.group(1).replace("\\n", "\n")))
    assert manifest["image.rootfs"]["filename"] == "rootfs.ext4"
    assert manifest["image.bootfs"]["filename"] == "bootfs.vfat"
    conf = ini_sections((IMAGE / "rauc/system-arm64.conf").read_text())
    classes = {section.split(".")[1] for section in conf if section.startswith("slot.")}
    assert classes == {"rootfs", "bootfs"}


def test_backend_is_installed_as_the_arm64_boot_state() -> None:
    """firstboot and mark-good call boot-state: on arm64 it is the tryboot backend."""
    assert os.access(BACKEND, os.X_OK)
    hook = (IMAGE / "hooks/customize").read_text()
    assert 'ln -sf boot-state-tryboot "$ROOT/usr/lib/tillbox/boot-state"' in hook
    result = subprocess.run(["bash", "-n", str(BACKEND)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


needs_disk_tools = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("genimage", "mkfs.fat", "mcopy", "sfdisk")),
    reason="genimage, dosfstools, mtools or fdisk is not installed")


@needs_disk_tools
def test_genimage_renders_the_arm64_disk(tmp_path: Path) -> None:
    """genimage accepts the layout (MBR, signature, 1-3 and 5-7); first boot can grow data."""
    fake_root(tmp_path)
    (tmp_path / "rootfs.ext4").write_bytes(b"\0" * 4096)
    with (tmp_path / "data.ext4").open("wb") as data:  # sparse, as large as its partition
        data.truncate(256 * 2**20)
    run_build(tmp_path, "OUT=$WORK/out NAME=disk ARCH=arm64 SOURCE_DATE_EPOCH=1700000000; "
                        "mkdir -p $OUT; make_boot_fs; "
                        "assemble_disk")
    table = subprocess.run(["sfdisk", "--dump", str(tmp_path / "out/disk.img")],
                           capture_output=True, text=True, check=True).stdout
    assert f"label-id: 0x{disk_signature()}" in table
    numbers = [int(number) for number in re.findall(r"disk\.img(\d+) :", table)]
    assert numbers == [1, 2, 3, 4, 5, 6, 7]
    assert re.search(r"disk\.img1 :.*type=c, bootable", table)
    assert re.search(r"disk\.img4 :.*type=f", table)
    if shutil.which("growpart"):
        grown = tmp_path / "out/disk.img"
        with grown.open("r+b") as disk:
            disk.truncate(grown.stat().st_size + 64 * 2**20)
        call = f'source "$1"; grow_extended "{grown}" 7; growpart "{grown}" 7'
        result = subprocess.run(["bash", "-c", call, "test",
                                 str(IMAGE / "rootfs/usr/lib/tillbox/firstboot")],
                                capture_output=True, text=True, check=False, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "CHANGED: partition=7" in result.stdout
    mtype = subprocess.run(["mtype", "-i", str(tmp_path / "boot.vfat"), "::/autoboot.txt"],
                           capture_output=True, text=True, check=True).stdout
    assert "boot_partition=2" in mtype
