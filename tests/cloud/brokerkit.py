"""Test kit: a fleet (CA, boxes, cloud services) and a real Mosquitto with its TLS listener.

Tests in ``tests/cloud`` import it as ``brokerkit`` (pytest puts the test's directory on the
path). The broker runs from the configuration ``tillbox fleet mosquitto-conf`` renders: TLS
only, client certificates from the fleet CA required, user name and client id = certificate CN,
the fleet's ACL. Typical use::

    fleet = make_fleet(tmp_path / "fleet")
    box = fleet.box("box-1")                        # CSR -> enroll -> bundle -> apply
    ingest = fleet.service("cloud-ingest-1")        # role "ingest"
    with running_broker(fleet, tmp_path / "broker") as broker:
        async with mqtt_client(broker, box) as client:
            await client.publish("tillbox/v1/box-1/status", b"{}", qos=1)
        fleet.revoke("box-1"); broker.restart()      # the new CRL takes effect

``Broker`` also has ``stop()``/``start()`` (same port, persistence kept), ``reload()`` (re-render
CRL and ACL, SIGHUP: new connections see them) and ``log()``. Every wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from cloud.fleet.apply import apply_bundle
from cloud.fleet.boxkey import make_csr
from cloud.fleet.bundle import write_bundle
from cloud.fleet.ca import Validity
from cloud.fleet.create import init_fleet
from cloud.fleet.enroll import Placement, enroll_box, enroll_service
from cloud.fleet.layout import FleetPaths
from cloud.fleet.mosquitto import BrokerOptions, render_broker
from cloud.fleet.revoke import revoke

MOSQUITTO = "/usr/sbin/mosquitto"
HOST = "127.0.0.1"
START_TIMEOUT = 5.0
PLACEMENT = Placement("tenant-1", "store-1", "R1")


@dataclass(frozen=True)
class Identity:
    """A TLS client identity: its name (CN = MQTT user = client id) and PEM files."""

    name: str
    ca_file: Path
    cert_file: Path
    key_file: Path

    def tls_context(self) -> ssl.SSLContext:
        """A client context trusting the fleet CA and presenting this identity."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True)
class Fleet:
    """A fleet directory made by ``make_fleet``; enrolls boxes and services through the API."""

    paths: FleetPaths

    def box(self, box_id: str, *, validity: Validity | None = None,
            placement: Placement = PLACEMENT,
            data_dir: Path | None = None) -> Identity:
        """Enroll a box as in the field: key and CSR in its data dir, bundle applied there.

        An id enrolled before gets a new certificate (``--renew``); ``validity`` in the past
        makes an expired certificate.
        """
        data_dir = data_dir or self.paths.root.parent / "boxes" / box_id
        enrolled = enroll_box(self.paths, make_csr(data_dir, box_id), placement,
                              validity=validity, renew=True)
        write_bundle(self.paths.bundle(box_id), enrolled.bundle)
        now = validity.not_before if validity else None
        keys = apply_bundle(data_dir, self.paths.bundle(box_id), now=now).cert_file.parent
        return Identity(box_id, keys / "fleet-ca.pem", keys / "mqtt-cert.pem",
                        keys / "mqtt-key.pem")

    def service(self, name: str, role: str = "ingest") -> Identity:
        """Issue a cloud service identity (call before ``running_broker`` or ``reload``)."""
        enroll_service(self.paths, name, role)
        directory = self.paths.service_dir(name)
        return Identity(name, directory / "ca.pem", directory / "cert.pem",
                        directory / "key.pem")

    def revoke(self, name: str) -> None:
        """Revoke a box or service (the broker sees it after ``restart`` or ``reload``)."""
        revoke(self.paths, name)


def make_fleet(directory: Path) -> Fleet:
    """A new fleet whose broker certificate names 127.0.0.1 and localhost."""
    paths = FleetPaths(directory)
    init_fleet(paths, "test", [HOST, "localhost"], now=dt.datetime.now(dt.UTC))
    return Fleet(paths)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Broker:
    """A Mosquitto process on the fleet's rendered configuration, on a fixed free port."""

    def __init__(self, fleet: Fleet, directory: Path) -> None:
        """Prepare (not start) a broker keeping its files under ``directory``."""
        self.fleet, self.directory = fleet, directory
        self.host, self.port = HOST, free_port()
        self.conf = directory / "conf" / "mosquitto.conf"
        self._log = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def render(self) -> None:
        """Render the configuration from the fleet's current CA, CRL and registry."""
        options = BrokerOptions(port=self.port, bind=HOST,
                                persistence_dir=self.directory / "data")
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        render_broker(self.fleet.paths, self.conf.parent, options)
        if os.geteuid() == 0:  # mosquitto would switch to its own user, who cannot read these
            with self.conf.open("a") as conf:
                conf.write("user root\n")

    def start(self) -> None:
        """Render, start, and wait until the listener accepts connections."""
        assert self._process is None, "broker already running"
        self.render()
        with self._log.open("ab") as log:
            self._process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log,
                                             stderr=subprocess.STDOUT)
        self._wait_listening()

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker (SIGTERM saves its persistence; ``kill`` loses what is unsaved)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=START_TIMEOUT)

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again on the same port, with a freshly rendered configuration."""
        self.stop(kill=kill)
        self.start()

    def reload(self) -> None:
        """Re-render (CRL, ACL) and send SIGHUP; returns once the broker has reloaded."""
        assert self._process is not None, "broker not running"
        before = self.log().count("Reloading config")
        self.render()
        self._process.send_signal(signal.SIGHUP)
        self._until(lambda: self.log().count("Reloading config") > before, "reload")

    def log(self) -> str:
        """Everything the broker logged so far."""
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def _wait_listening(self) -> None:
        def listening() -> bool:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        self._until(listening, "start")

    def _until(self, condition: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"mosquitto did not {what} in time:\n{self.log()}")
            time.sleep(0.01)


@contextmanager
def running_broker(fleet: Fleet, directory: Path) -> Iterator[Broker]:
    """A started ``Broker`` for ``fleet``, stopped on exit."""
    broker = Broker(fleet, directory)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def mqtt_client(broker: Broker, identity: Identity, **options: Any) -> aiomqtt.Client:
    """An aiomqtt MQTT 5 client presenting ``identity`` (client id = its name by default)."""
    options.setdefault("identifier", identity.name)
    options.setdefault("timeout", 3)
    return aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5,
                          tls_context=identity.tls_context(), **options)
