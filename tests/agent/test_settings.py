"""Settings: embedded defaults, TOML file, ``TILLBOX_*`` overrides, flags, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.settings import ConfigError, Settings, load_settings
from fiscal.paths import default_data_dir


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without TILLBOX_* variables from the caller's environment."""
    for name in list(os.environ):
        if name.startswith("TILLBOX_"):
            monkeypatch.delenv(name)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_make_a_demo_box() -> None:
    """With no file and no variables the box is a French demo store on 127.0.0.1:8080."""
    settings = Settings()
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.store.name == "Boutique de démonstration"
    assert settings.data_dir == default_data_dir()
    assert {settings.devices.printer, settings.devices.scanner} == {"simulated"}
    assert settings.cloud.enabled is False
    journal = settings.journal.to_fiscal("9.9.9")
    assert (journal.store_id, journal.register_id, journal.timezone) == (
        "demo-store", "R1", "Europe/Paris")
    assert journal.software_version == "9.9.9"


def test_toml_then_environment_then_flags(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment variables beat the file, flags beat both, untouched keys keep the file's."""
    config = write(tmp_path / "tillbox.toml", """
data_dir = "/srv/from-file"
[http]
host = "0.0.0.0"
port = 9000
[store]
name = "Chez Paul"
[journal]
register_id = "R7"
[journal.closure]
grace_hours = 3
""")
    from_file = load_settings(config)
    assert (from_file.http.host, from_file.http.port) == ("0.0.0.0", 9000)
    assert from_file.journal.closure.grace_hours == 3

    monkeypatch.setenv("TILLBOX_HTTP__PORT", "9100")
    monkeypatch.setenv("TILLBOX_JOURNAL__CLOSURE__GRACE_HOURS", "12")
    monkeypatch.setenv("TILLBOX_STORE__NAME", "Chez Pierre")
    from_env = load_settings(config)
    assert (from_env.http.host, from_env.http.port) == ("0.0.0.0", 9100)
    assert from_env.journal.closure.grace_hours == 12
    assert from_env.store.name == "Chez Pierre"
    assert from_env.journal.register_id == "R7"

    flagged = load_settings(config, data_dir=tmp_path / "data", http="[::1]:9200")
    assert (flagged.http.host, flagged.http.port) == ("::1", 9200)
    assert flagged.data_dir == tmp_path / "data"
    assert load_settings(config).data_dir == Path("/srv/from-file")


def test_bad_values_name_their_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every invalid or unknown key is listed with its dotted name."""
    config = write(tmp_path / "bad.toml", """
[store]
nmae = "typo"
[journal]
timezone = "Mars/Olympus"
""")
    monkeypatch.setenv("TILLBOX_HTTP__PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "store.nmae: Extra inputs are not permitted" in message
    assert "journal.timezone: unknown time zone 'Mars/Olympus'" in message
    assert "http.port:" in message
    assert "[set by TILLBOX_HTTP__PORT]" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("[http\nport = 1", "not valid TOML"),
    ("[cloud]\nenabled = true", "cloud: cloud.enabled needs cloud.broker"),
])
def test_unusable_files_are_explained(tmp_path: Path, text: str, expected: str) -> None:
    """A file that is not TOML, or an inconsistent table, gives a readable message."""
    with pytest.raises(ConfigError, match=expected):
        load_settings(write(tmp_path / "x.toml", text))


@pytest.mark.parametrize("value", ["8080", "host:", ":8080", "host:port"])
def test_http_flag_needs_host_and_port(value: str) -> None:
    """``--http`` must be HOST:PORT."""
    with pytest.raises(ConfigError, match="--http: expected HOST:PORT"):
        load_settings(http=value)


def test_run_with_a_bad_value_exits_2_naming_the_key(tmp_path: Path) -> None:
    """``tillbox run`` with an invalid setting prints the key on stderr and exits 2."""
    config = write(tmp_path / "tillbox.toml", "[http]\nport = 70000\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config),
                                      "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2
    assert "http.port: Input should be less than or equal to 65535" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists()


def test_run_with_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    """An explicit ``--config`` that does not exist is a configuration error."""
    result = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "--config: no such file" in result.stderr


def test_a_provisioning_fragment_in_the_data_dir_is_read_under_the_main_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cloud.toml`` (from ``tillbox fleet apply``) configures the cloud; the main file wins."""
    for name in list(os.environ):
        if name.startswith("TILLBOX_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "cloud.toml").write_text(
        '[cloud]\nenabled = true\nbroker = "mqtts://cloud.example:8883"\nbox_id = "box-7"\n'
        'window = 8\n')
    main = tmp_path / "tillbox.toml"
    main.write_text(f'data_dir = "{data_dir}"\n[cloud]\nwindow = 2\n')
    from_fragment = load_settings(data_dir=data_dir)
    both = load_settings(main)
    assert (from_fragment.cloud.enabled, from_fragment.cloud.box_id) == (True, "box-7")
    assert from_fragment.cloud.window == 8
    assert (both.cloud.broker, both.cloud.box_id, both.cloud.window) == (
        "mqtts://cloud.example:8883", "box-7", 2)
