"""The box's settings: one TOML file, overridden by ``TILLBOX_*`` variables, over embedded defaults.

Precedence, highest first: command-line flags (``--data-dir``, ``--http``), environment variables
(``TILLBOX_HTTP__PORT=9000``: nested keys joined by ``__``), the TOML file, the defaults below.
The defaults alone give a working demo box (see ``docs/configuration.md``). ``load_settings``
turns every problem (unreadable file, bad value, unknown key) into one ``ConfigError`` whose
message names the offending key.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
import zoneinfo
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

import fiscal
from fiscal.money import FRENCH_VAT_RATES
from fiscal.paths import default_data_dir
from fiscal.settings import ClosurePolicy, JournalSettings

SYSTEM_CONFIG = Path("/etc/tillbox/tillbox.toml")
CLOUD_FRAGMENT = "cloud.toml"
"""The ``[cloud]`` table a provisioning bundle installs in the data dir (``tillbox fleet apply``);
read under the main file, which overrides it key by key."""
ENV_PREFIX = "TILLBOX_"
DeviceDriver = Literal["simulated", "none"]
"""How a device is provided: ``simulated`` (in-process simulator) or ``none`` (absent)."""
PrinterDriver = Literal["simulated", "usb", "none"]
"""How the receipt printer is provided: also ``usb`` (a real printer, ``[devices.usb_printer]``)."""
E_RECEIPT_FIELDS = frozenset({"store_id", "register_id", "seq", "chain", "chain_seq", "number"})
"""What an e-receipt URL template may contain (``{store_id}``, ``{seq}``…)."""


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and says why."""


@cache
def software_version() -> str:
    """The installed tillbox version."""
    try:
        return metadata.version("tillbox")
    except metadata.PackageNotFoundError:
        return fiscal.__version__


class Section(BaseModel):
    """A table of the configuration file: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class HttpSettings(Section):
    """Where the local HTTP API and the status page listen."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class StoreIdentity(Section):
    """The merchant as printed on receipts (demo placeholders by default)."""

    name: str = Field(default="Boutique de démonstration", min_length=1, max_length=120)
    address: tuple[str, ...] = ("1 place de la Démonstration", "75001 Paris")
    siret: str = "000 000 000 00000"
    naf: str = "47.11D"
    vat_number: str = "FR00000000000"


class JournalSection(Section):
    """The journal's identity and rules, mapped onto ``fiscal.settings.JournalSettings``."""

    store_id: str = Field(default="demo-store", min_length=1, max_length=64)
    register_id: str = Field(default="R1", min_length=1, max_length=64)
    timezone: str = "Europe/Paris"
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    prices_include_vat: bool = True
    vat_rates: tuple[int, ...] = FRENCH_VAT_RATES
    extra_tenders: tuple[str, ...] = ()
    closure: ClosurePolicy = ClosurePolicy()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    def to_fiscal(self, version: str) -> JournalSettings:
        """The settings ``fiscal.journal.Journal`` takes, stamped with the software version."""
        return JournalSettings(**self.model_dump(), software_name="tillbox",
                               software_version=version)


def _usb_id(value: Any) -> Any:
    """A USB id given as a hex string (``"04b8"``, ``"0x04b8"``) becomes its number."""
    if isinstance(value, str):
        try:
            return int(value.removeprefix("0x").removeprefix("0X"), 16)
        except ValueError:
            return value  # refused with the key's name by the int validation
    return value


UsbId = Annotated[int, BeforeValidator(_usb_id), Field(ge=0, le=0xFFFF)]


class UsbPrinterSettings(Section):
    """Which USB printer: vendor and product id, and its serial number or port if two match."""

    vendor_id: UsbId
    product_id: UsbId
    serial: str | None = Field(default=None, min_length=1, max_length=126)
    port_path: str | None = Field(default=None, pattern=r"^\d{1,3}-\d{1,3}(\.\d{1,3}){0,6}$")


class DevicesSettings(Section):
    """Which driver provides each peripheral, and the cash drawer's sensor."""

    printer: PrinterDriver = "simulated"
    drawer: DeviceDriver = "simulated"
    display: DeviceDriver = "simulated"
    scale: DeviceDriver = "simulated"
    scanner: DeviceDriver = "simulated"
    drawer_open_when_high: bool = True
    drawer_left_open_after: float = Field(default=30.0, gt=0, le=86_400)
    usb_printer: UsbPrinterSettings | None = None

    @model_validator(mode="after")
    def _usb_printer_given(self) -> DevicesSettings:
        if self.printer == "usb" and self.usb_printer is None:
            raise ValueError("devices.printer = \"usb\" needs [devices.usb_printer] "
                             "vendor_id and product_id")
        return self


class CloudSettings(Section):
    """Replication of the journal to the cloud (off until a broker is configured).

    ``broker`` is ``mqtt://host:port`` or ``mqtts://host:port`` (TLS, with the box's client
    certificate ``cert_file``/``key_file`` and the fleet CA ``ca_file``); ``box_id`` is the MQTT
    client id and topic subtree (the certificate's CN; default ``{store_id}-{register_id}``);
    ``replaces`` is the box id of the box this one replaces (set by a replacement's bundle):
    an empty journal's first start then continues that box's chains, fetched from the cloud.
    See ``docs/replication.md``.
    """

    enabled: bool = False
    broker: str | None = Field(default=None, pattern=r"^mqtts?://[^/?#@]+/?$", max_length=300)
    box_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    replaces: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    batch_size: int = Field(default=500, ge=50, le=500)
    window: int = Field(default=4, ge=1, le=32)
    ack_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    session_expiry_seconds: int = Field(default=7 * 86_400, ge=1, le=2**32 - 2)
    keepalive_seconds: int = Field(default=20, ge=5, le=3600)
    backoff_min_seconds: float = Field(default=0.5, gt=0, le=3600)
    backoff_max_seconds: float = Field(default=60.0, gt=0, le=86_400)
    refused_backoff_seconds: float = Field(default=600.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _broker_when_enabled(self) -> CloudSettings:
        if self.enabled and not self.broker:
            raise ValueError("cloud.enabled needs cloud.broker (e.g. mqtts://broker:8883)")
        if self.backoff_max_seconds < self.backoff_min_seconds:
            raise ValueError("cloud.backoff_max_seconds is below cloud.backoff_min_seconds")
        if self.broker and urlsplit(self.broker).port == 0:  # .port raises past 65535
            raise ValueError("cloud.broker: port 0")
        if self.replaces is not None and self.replaces == self.box_id:
            raise ValueError("cloud.replaces names this box itself (cloud.box_id)")
        return self


class LocalMqttSettings(Section):
    """The local MQTT API on the box's own broker (off until enabled; see docs/api/mqtt.md)."""

    enabled: bool = False
    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = Field(default=None, min_length=1, max_length=255)
    password: SecretStr | None = None
    box_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    topic_prefix: str = Field(default="tillbox/{box_id}/", min_length=2, max_length=200,
                              pattern=r"^[^+#$\x00][^+#\x00]*/$")
    keepalive_seconds: int = Field(default=15, ge=5, le=3600)
    max_concurrent_requests: int = Field(default=8, ge=1, le=256)
    retry_min_seconds: float = Field(default=0.5, gt=0, le=60)
    retry_max_seconds: float = Field(default=30.0, gt=0, le=3600)


class LogSettings(Section):
    """Log verbosity and format (``auto``: console on a terminal, JSON lines otherwise)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class AccessSettings(Section):
    """Users and frontends: the initial admin PIN (random and shown on the status page if unset)."""

    initial_admin_pin: str | None = Field(default=None, pattern=r"^[0-9]{4,8}$")


class EmailSettings(Section):
    """Sending e-mail receipts over SMTP (off until a server is configured)."""

    enabled: bool = False
    host: str = Field(default="localhost", min_length=1, max_length=255)
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(default="tillbox@localhost", min_length=3, max_length=254)
    starttls: bool = False
    tls: bool = False
    username: str | None = Field(default=None, max_length=255)
    password: SecretStr | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    retry_seconds: float = Field(default=30.0, gt=0, le=86_400)
    max_attempts: int = Field(default=10, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailSettings:
        if self.starttls and self.tls:
            raise ValueError("email.starttls and email.tls exclude each other")
        return self


class ReceiptsSettings(Section):
    """How receipts look: default language, paper roll, certification mentions, footer."""

    language: Literal["fr", "en", "ru"] = "fr"
    paper: Literal["80mm", "58mm"] = "80mm"
    certification_category: str | None = Field(default=None, max_length=40)
    certification_number: str | None = Field(default=None, max_length=40)
    footer: tuple[Annotated[str, Field(max_length=120)], ...] = Field(default=(), max_length=5)
    e_receipt_url: str | None = Field(default=None, max_length=200,
                                      pattern=r"^https?://[^\s]+$")

    @field_validator("e_receipt_url")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as error:
            raise ValueError(f"not a URL template: {error}") from error
        unknown = names - E_RECEIPT_FIELDS
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; use {sorted(E_RECEIPT_FIELDS)}")
        try:
            value.format(store_id="s", register_id="R1", seq=1, chain="ticket", chain_seq=1,
                         number="R1-ticket-000001")
        except (ValueError, TypeError) as error:
            raise ValueError(f"not a URL template: {error}") from error
        return value


class Settings(BaseSettings):
    """Everything the box is configured with, validated."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    http: HttpSettings = HttpSettings()
    store: StoreIdentity = StoreIdentity()
    journal: JournalSection = JournalSection()
    devices: DevicesSettings = DevicesSettings()
    cloud: CloudSettings = CloudSettings()
    local_mqtt: LocalMqttSettings = LocalMqttSettings()
    log: LogSettings = LogSettings()
    access: AccessSettings = AccessSettings()
    email: EmailSettings = EmailSettings()
    receipts: ReceiptsSettings = ReceiptsSettings()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, then environment, then the TOML files (set by ``load_settings``).

        The files merge key by key, the later one winning.
        """
        sources = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls, deep_merge=True))
        return tuple(sources)


def box_id(settings: Settings) -> str:
    """The box's MQTT id: ``[cloud] box_id`` (its certificate's CN), else a default.

    The default is ``{store_id}-{register_id}`` reduced to what a client id may hold.
    """
    journal = settings.journal
    return settings.cloud.box_id or re.sub(
        r"[^A-Za-z0-9._-]", "-", f"{journal.store_id}-{journal.register_id}")[:64]


def parse_http(value: str) -> dict[str, Any]:
    """Split ``HOST:PORT`` (``[::1]:8080`` for IPv6) into the ``http`` table."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--http: expected HOST:PORT, got {value!r}")
    return {"host": host, "port": int(port)}


def config_file(explicit: Path | None) -> Path | None:
    """The file to read: ``--config`` if given (must exist), else the system file if present."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--config: no such file {explicit}")
        return explicit
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


def load_settings(config: Path | None = None, *, data_dir: Path | None = None,
                  http: str | None = None) -> Settings:
    """Read and validate the settings; ``ConfigError`` names the first bad key."""
    path = config_file(config)
    flags: dict[str, Any] = {}
    if data_dir is not None:
        flags["data_dir"] = data_dir
    if http is not None:
        flags["http"] = parse_http(http)
    try:
        settings = _with_files(path)(**flags)
        fragment = settings.data_dir / CLOUD_FRAGMENT
        if fragment.is_file():  # written by ``tillbox fleet apply``; the main file overrides it
            path = fragment if path is None else path
            settings = _with_files(fragment, config_file(config))(**flags)
        return settings
    except ValidationError as error:
        raise ConfigError(describe(error, path)) from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error


def _with_files(*paths: Path | None) -> type[Settings]:
    files = [path for path in paths if path is not None]
    if not files:
        return Settings
    config = SettingsConfigDict(**{**Settings.model_config, "toml_file": files})
    return type("FileSettings", (Settings,), {"model_config": config,
                                              "__module__": __name__})


def describe(error: ValidationError, path: Path | None) -> str:
    """One line per problem: ``key: why (got value)``, keys dotted as in the TOML file."""
    where = f"{path} and " if path else ""
    lines = [f"invalid configuration (from {where}TILLBOX_* environment variables):"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        got = "" if problem["type"] == "missing" else f" (got {problem.get('input')!r})"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {key}: {message}{got}{_env_origin(problem['loc'])}")
    return "\n".join(lines)


def _env_origin(loc: tuple[int | str, ...]) -> str:
    name = ENV_PREFIX + "__".join(str(part) for part in loc).upper()
    return f" [set by {name}]" if name in os.environ else ""
