"""The status page of a real ``tillbox run``, loaded in Debian's headless Chromium.

Chromium renders the page served by the daemon; the tests read the DOM as the browser built it
and check the screenshot is a real picture. ``scripts/bootstrap.sh test`` installs Chromium;
without ``/usr/bin/chromium`` the tests are skipped.

Regenerate the picture of the docs with
``.venv/bin/python tests/agent/test_status_page_browser.py docs/img/status-page.png``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageStat

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1280, 1600)
BROWSER_TIMEOUT = 60.0
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
START_SEQ = 2  # 260 initialisation, then 1000 box start
DEVICE_KINDS = ("printer", "drawer", "display", "scale", "scanner")
# Flags that keep Chromium off the (closed) network and out of the user's profile.
QUIET_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--hide-scrollbars")
# A French technician's browser: ``/`` answers in French, ``?lang=en`` must override it.
BROWSER_LANGUAGE = "--accept-lang=fr-FR,fr"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed "
                                       "(run scripts/bootstrap.sh test)")


class PageText(HTMLParser):
    """The text a reader sees, whole and per element carrying an ``id`` or ``data-device``."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.by_key: dict[str, list[str]] = {}
        self._open: list[str | None] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        key = found.get("id") or found.get("data-device")
        if tag in ("br", "meta", "link", "img", "input"):
            return
        self._open.append(key)
        self._hidden += tag in ("style", "script", "title")
        if key:
            self.by_key[key] = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "meta", "link", "img", "input") or not self._open:
            return
        self._open.pop()
        self._hidden -= tag in ("style", "script", "title")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.text.append(data)
        for key in filter(None, self._open):
            self.by_key[key].append(data)

    def of(self, key: str) -> str:
        """The text inside the element named ``key``, whitespace collapsed."""
        return " ".join("".join(self.by_key[key]).split())


def read_page(dom: str) -> PageText:
    page = PageText()
    page.feed(dom)
    page.close()
    return page


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def daemon_env() -> dict[str, str]:
    """The caller's environment without TILLBOX_* settings or systemd's variables."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith("TILLBOX_") and name not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}


def wait_until_started(process: subprocess.Popen[str], url: str) -> dict[str, Any]:
    """Poll ``/health`` until every device is ready and the start event (seq 2) is journaled."""
    began = time.monotonic()
    while time.monotonic() - began < READY_TIMEOUT:
        assert process.poll() is None, process.communicate(timeout=STOP_TIMEOUT)[1]
        try:
            health: dict[str, Any] = httpx.get(f"{url}/health", timeout=1).json()
        except httpx.TransportError:
            health = {}
        started = health.get("journal", {}).get("seq", 0) >= START_SEQ
        if started and {device["status"] for device in health.get("devices", [])} == {"ready"}:
            return health
        time.sleep(0.05)
    raise AssertionError("the daemon and its simulated devices did not become ready")


class Daemon:
    """A running ``tillbox run`` process and the address of its HTTP server."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.health = wait_until_started(process, url)

    def stop(self) -> tuple[int, str]:
        """SIGTERM the daemon; return its exit code and its log (stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr


@contextmanager
def running_daemon(data_dir: Path) -> Iterator[Daemon]:
    """Start ``tillbox run`` on a free port with ``data_dir``; SIGTERM it on the way out."""
    port = free_port()
    command = [sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir),
               "--http", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, env=daemon_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    daemon = None
    try:
        daemon = Daemon(process, f"http://127.0.0.1:{port}")
        yield daemon
    finally:
        if daemon is None:
            process.kill()
            process.communicate(timeout=STOP_TIMEOUT)
        else:
            daemon.stop()


def chromium(*arguments: str) -> str:
    """Run headless Chromium in a fresh profile; return its stdout. Its whole group is reaped."""
    with tempfile.TemporaryDirectory(prefix="tb-chromium-") as profile:
        command = [str(CHROMIUM), *QUIET_FLAGS, f"--user-data-dir={profile}",
                   BROWSER_LANGUAGE, *arguments]
        browser = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            stdout, stderr = browser.communicate(timeout=BROWSER_TIMEOUT)
        finally:
            _kill_group(browser)
    assert browser.returncode == 0, stderr[-2000:]
    return stdout


def _kill_group(browser: subprocess.Popen[str]) -> None:
    """Kill whatever is left of Chromium's process group (all of it, on a timeout)."""
    try:
        os.killpg(browser.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    browser.communicate()


def dump_dom(url: str) -> str:
    return chromium(f"--window-size={WINDOW[0]},{WINDOW[1]}", "--dump-dom", url)


def screenshot(url: str, target: Path) -> Path:
    """Save a PNG of ``url`` as Chromium draws it in a WINDOW-sized window."""
    chromium(f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={target}", url)
    return target


TEXTS = {
    "fr": ("État de la caisse", "Journal fiscal", "Périphériques", "simulé — prêt",
           ("Imprimante", "Tiroir-caisse", "Afficheur client", "Balance",
            "Lecteur de codes-barres")),
    "en": ("Box status", "Fiscal journal", "Devices", "simulated — ready",
           ("Printer", "Cash drawer", "Customer display", "Scale", "Barcode scanner")),
}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_chromium_shows_the_status_page_of_a_running_box(tmp_path: Path, language: str) -> None:
    """A French browser reads store, journal, ready devices and pairing; ``?lang=en`` wins."""
    title, journal, devices, ready, device_names = TEXTS[language]
    with running_daemon(tmp_path / "data") as daemon:
        query = "" if language == "fr" else f"?lang={language}"
        began = time.monotonic()
        page = read_page(dump_dom(f"{daemon.url}/{query}"))
        print(f"chromium --dump-dom: {time.monotonic() - began:.2f} s")
        seq = daemon.health["journal"]["seq"]
        code, stderr = daemon.stop()

    assert code == 0, stderr
    text = " ".join(" ".join(page.text).split())
    assert "Boutique de démonstration" in page.of("identity")
    for heading in (title, journal, devices):
        assert heading in text
    assert page.of("global-seq") == str(seq) == str(START_SEQ)
    assert re.fullmatch(r"\d{6}", page.of("pairing-code"))
    assert [page.of(kind) for kind in DEVICE_KINDS] == [ready] * len(DEVICE_KINDS)
    for name in device_names:
        assert name in page.of("devices")


def test_chromium_screenshot_is_a_drawn_page(tmp_path: Path) -> None:
    """The screenshot is a WINDOW-sized PNG with the dark header drawn and varied content."""
    with running_daemon(tmp_path / "data") as daemon:
        began = time.monotonic()
        target = screenshot(f"{daemon.url}/?lang=en", tmp_path / "status.png")
        print(f"chromium --screenshot: {time.monotonic() - began:.2f} s")
        code, stderr = daemon.stop()

    assert code == 0, stderr
    with Image.open(target) as picture:
        picture.load()
        assert picture.format == "PNG"
        assert picture.size == WINDOW
        rgb = picture.convert("RGB")
    assert rgb.getpixel((4, 4)) == (0x1D, 0x23, 0x30)  # the header's background
    assert rgb.getpixel((4, WINDOW[1] - 4)) == (0xF4, 0xF5, 0xF7)  # the page's background
    assert min(ImageStat.Stat(rgb.convert("L")).stddev) > 10
    assert len(rgb.getcolors(maxcolors=1 << 20) or []) > 50


def main(target: str) -> None:
    """Write a screenshot of a freshly started box's status page (English) to ``target``."""
    with tempfile.TemporaryDirectory(prefix="tb-shot-") as data, \
            running_daemon(Path(data) / "data") as daemon:
        screenshot(f"{daemon.url}/?lang=en", Path(target).resolve())
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1])
