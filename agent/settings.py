"""The box's settings: one TOML file, overridden by ``TILLBOX_*`` variables, over embedded defaults.

Precedence, highest first: command-line flags (``--data-dir``, ``--http``), environment variables
(``TILLBOX_HTTP__PORT=9000``: nested keys joined by ``__``), the TOML file, the defaults below.
The defaults alone give a working demo box (see ``docs/configuration.md``). ``load_settings``
turns every problem (unreadable file, bad value, unknown key) into one ``ConfigError`` whose
message names the offending key.
"""

from __future__ import annotations

import os
import tomllib
import zoneinfo
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
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
ENV_PREFIX = "TILLBOX_"
DeviceDriver = Literal["simulated", "none"]
"""How a device is provided: ``simulated`` (in-process simulator) or ``none`` (absent)."""


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


class DevicesSettings(Section):
    """Which driver provides each peripheral (real drivers come later)."""

    printer: DeviceDriver = "simulated"
    drawer: DeviceDriver = "simulated"
    display: DeviceDriver = "simulated"
    scale: DeviceDriver = "simulated"
    scanner: DeviceDriver = "simulated"


class CloudSettings(Section):
    """Replication of the journal to the cloud (off until a broker is configured)."""

    enabled: bool = False
    broker: str | None = None

    @model_validator(mode="after")
    def _broker_when_enabled(self) -> CloudSettings:
        if self.enabled and not self.broker:
            raise ValueError("cloud.enabled needs cloud.broker (e.g. mqtts://broker:8883)")
        return self


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
        """Flags, then environment, then the TOML file (set by ``load_settings``)."""
        sources = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)


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
    source = _with_file(path)
    try:
        return source(**flags)
    except ValidationError as error:
        raise ConfigError(describe(error, path)) from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error


def _with_file(path: Path | None) -> type[Settings]:
    if path is None:
        return Settings
    config = SettingsConfigDict(**{**Settings.model_config, "toml_file": path})
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
