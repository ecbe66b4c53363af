"""Test kit of the replication tests: a Mosquitto of the test's own, a test cloud, journal filler.

* ``mosquitto(tmp_path)`` — starts ``/usr/sbin/mosquitto`` on a free port with a generated
  configuration (optionally an ACL file, and a second, TLS listener requiring client
  certificates from a test CA: ``tls=True``) and stops it at exit; ``broker.kill()`` (SIGKILL) and
  ``broker.start()`` (same port) for restarts.
* ``TestCloud`` — a real MQTT client that does what the cloud ingest does for one box:
  stores the entries of ``journal/up`` in a dict (exactly the strings sent), acks the highest
  contiguous seq, nacks a gap; modes to drop acks or nack once.
* ``fill(journal, n)`` — ``n`` signed events committed in one transaction (fast).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import inspect
import ipaddress
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.cancellation import cancel_all
from agent.settings import CloudSettings
from fiscal.journal import SYSTEM, Journal, Pending
from fiscal.records import Event

MOSQUITTO = "/usr/sbin/mosquitto"
BOX = "box-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    """A test CA, the broker's certificate (127.0.0.1) and the box's client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    box_cert: Path
    box_key: Path


def make_tls(directory: Path, box_id: str = BOX) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test fleet CA")])
    ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    files = TlsFiles(*(directory / name for name in (
        "ca.pem", "server.pem", "server-key.pem", "box.pem", "box-key.pem")))
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, name, san in (
            (files.server_cert, files.server_key, "broker", True),
            (files.box_cert, files.box_key, box_id, False)):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = _certificate(subject, ca_name, key.public_key(), ca_key, san=san)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return files


def _certificate(subject: x509.Name, issuer: x509.Name, public_key: Any, signer: Any, *,
                 ca: bool = False, san: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(signer, hashes.SHA256())


class Broker:
    """A Mosquitto process on a fixed port (and a TLS listener requiring client certificates)."""

    def __init__(self, directory: Path, port: int, acl: str | None = None,
                 tls: TlsFiles | None = None) -> None:
        self.directory, self.port, self.tls = directory, port, tls
        self.tls_port = free_port() if tls else None
        self.process: subprocess.Popen[bytes] | None = None
        lines = [f"listener {port} 127.0.0.1", "allow_anonymous true",
                 f"user {getpass.getuser()}",  # as root, mosquitto would drop to "mosquitto"
                 "max_queued_messages 10000", "log_type error", "log_type warning"]
        if acl is not None:
            (directory / "acl").write_text(acl)
            lines.append(f"acl_file {directory / 'acl'}")
        if tls is not None:
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {tls.ca}",
                      f"certfile {tls.server_cert}", f"keyfile {tls.server_key}",
                      "require_certificate true", "use_identity_as_username true"]
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    async def start(self) -> None:
        with (self.directory / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            await asyncio.sleep(0.02)
        self.kill()
        log_text = (self.directory / "mosquitto.log").read_text()[-2000:]
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{log_text}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None


@asynccontextmanager
async def mosquitto(directory: Path, acl: str | None = None,
                    tls: bool = False) -> AsyncIterator[Broker]:
    directory.mkdir(parents=True, exist_ok=True)
    broker = Broker(directory, free_port(), acl, make_tls(directory / "tls") if tls else None)
    await broker.start()
    try:
        yield broker
    finally:
        broker.kill()


def cloud_settings(port: int, **overrides: Any) -> CloudSettings:
    """Replication to a local broker, with timings fit for tests."""
    values: dict[str, Any] = {
        "enabled": True, "broker": f"mqtt://127.0.0.1:{port}", "box_id": BOX,
        "batch_size": 50, "window": 3, "ack_timeout_seconds": 5.0, "keepalive_seconds": 5,
        "backoff_min_seconds": 0.05, "backoff_max_seconds": 0.2,
        "refused_backoff_seconds": 30.0, "session_expiry_seconds": 60}
    return CloudSettings(**{**values, **overrides})


async def fill(journal: Journal, count: int) -> None:
    """Commit ``count`` technical events (JET 1060) in one transaction."""
    pending = [Pending(Event(code=1060, operator=SYSTEM, description="Configuration change",
                             details={"n": index})) for index in range(count)]
    async with journal.lock:
        await journal.commit(pending, None)


async def stored_bodies(journal: Journal) -> dict[int, str]:
    """Every entry of the journal exactly as stored."""
    rows = await journal.store.raw_bodies(1, 1_000_000)
    return dict(rows)


async def wait_for(condition: Callable[[], object], timeout: float = 5.0,
                   what: str = "condition") -> None:
    """Until ``condition()`` (awaited if need be) is truthy, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = condition()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class TestCloud:
    """The cloud's side of the protocol for one box, on a real MQTT connection."""

    __test__ = False

    port: int
    box: str = BOX
    drop_acks: int = 0
    """Batches to receive without acknowledging (an ack lost, or a slow cloud)."""
    nack_once_at: int | None = None
    """The first batch holding this seq is refused with a nack expecting it."""
    entries: dict[int, str] = field(default_factory=dict)
    batches: list[tuple[int, int]] = field(default_factory=list)
    nacked: list[int] = field(default_factory=list)
    epoch: str | None = None
    received: list[tuple[str, bytes, Any]] = field(default_factory=list)
    client: aiomqtt.Client | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def watermark(self) -> int:
        seq = 0
        while seq + 1 in self.entries:
            seq += 1
        return seq

    def topic(self, suffix: str) -> str:
        return f"tillbox/v1/{self.box}/{suffix}"

    async def run(self) -> None:
        """Serve until cancelled, reconnecting when the broker goes away."""
        while True:
            try:
                await self._serve()
            except aiomqtt.MqttError:
                self.connected.clear()
                self.client = None
                await asyncio.sleep(0.05)

    async def _serve(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier=f"cloud-{self.box}",
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe([(self.topic("journal/up"), 1), (self.topic("status"), 1),
                                    (self.topic("config/reported"), 1),
                                    (self.topic("cmd-res/+"), 1)])
            self.client = client
            self.connected.set()
            outbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
            sender = asyncio.create_task(self._answer(outbox))
            try:
                async for message in client.messages:  # never blocked: it sees disconnections
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    self.received.append((str(message.topic), payload, message.properties))
                    if str(message.topic) == self.topic("journal/up"):
                        for answer in self._ingest(orjson.loads(payload)):
                            outbox.put_nowait(answer)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await sender

    async def _answer(self, outbox: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        while True:
            suffix, document = await outbox.get()
            await self.send(suffix, document)

    def _ingest(self, batch: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        self.epoch = batch["epoch"]
        first, last = batch["from_seq"], batch["to_seq"]
        self.batches.append((first, last))
        assert len(batch["entries"]) == last - first + 1
        if self.nack_once_at is not None and first <= self.nack_once_at <= last:
            self.nacked.append(self.nack_once_at)
            self.nack_once_at = None
            return [("journal/nack", {"epoch": self.epoch, "expected_seq": self.nacked[-1],
                                      "reason": "test"})]
        if first > self.watermark + 1:
            return [("journal/nack", {"epoch": self.epoch, "expected_seq": self.watermark + 1,
                                      "reason": "gap"})]
        for offset, body in enumerate(batch["entries"]):
            assert isinstance(body, str)
            self.entries.setdefault(first + offset, body)
        if self.drop_acks > 0:
            self.drop_acks -= 1
            return []
        return [("journal/ack", {"epoch": self.epoch, "acked_through": self.watermark})]

    async def send(self, suffix: str, document: dict[str, Any], *, retain: bool = False,
                   properties: Any = None) -> None:
        assert self.client is not None
        await self.client.publish(self.topic(suffix), orjson.dumps(document), qos=1,
                                  retain=retain, properties=properties, timeout=1.0)

    def messages(self, suffix: str) -> list[tuple[bytes, Any]]:
        return [(payload, props) for topic, payload, props in self.received
                if topic == self.topic(suffix)]


@asynccontextmanager
async def cloud_for(port: int, **options: Any) -> AsyncIterator[TestCloud]:
    cloud = TestCloud(port, **options)
    task = asyncio.create_task(cloud.run())
    try:
        await asyncio.wait_for(cloud.connected.wait(), 5)
        yield cloud
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def replicating(replicator: Any) -> AsyncIterator[None]:
    """Run the replicator's loop for the block."""
    task = asyncio.create_task(replicator.run(), name="replication")
    try:
        yield
    finally:
        await cancel_all([task])  # as the daemon does: aiomqtt may swallow one cancellation
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
