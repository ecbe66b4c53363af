"""``tillbox fleet``: the fleet CA, enrollment, bundles, revocation and the broker's config.

Fleet side (on the machine holding the fleet directory): ``init``, ``enroll``, ``service``,
``revoke``, ``crl``, ``list``, ``mosquitto-conf``. Box side: ``csr``, ``apply``. Exit status 0
on success, 1 when the operation is refused (the message says why; nothing was changed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from cloud.fleet.errors import FleetError
from cloud.fleet.layout import FleetPaths
from fiscal.paths import default_data_dir

app = typer.Typer(help="Fleet provisioning: CA, box enrollment, bundles, revocation, broker "
                  "configuration.", no_args_is_help=True, add_completion=False)

FleetDir = Annotated[Path, typer.Option("--dir", help="The fleet directory (holds the CA key).")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="The box's data directory.")]
T = TypeVar("T")


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except FleetError as error:
        typer.echo(f"tillbox fleet: {error}", err=True)
        raise typer.Exit(1) from None


@app.command()
def init(
    fleet_dir: FleetDir,
    broker_host: Annotated[list[str], typer.Option(
        "--broker-host", help="Broker host name or address (repeat for several; the first "
        "goes into the broker URL).")],
    name: Annotated[str, typer.Option(help="Fleet name (in the CA's name).")] = "fleet",
    broker_url: Annotated[str | None, typer.Option(
        help="URL boxes connect to (default mqtts://FIRST-HOST:8883).")] = None,
    crl_days: Annotated[int, typer.Option(min=1, max=3650, help="CRL lifetime.")] = 365,
) -> None:
    """Create a fleet: CA, empty CRL, broker server certificate, empty registry."""
    from cloud.fleet.create import init_fleet

    config = _run(lambda: init_fleet(FleetPaths(fleet_dir), name, broker_host, url=broker_url,
                                     crl_days=crl_days))
    typer.echo(f"fleet {config.name} created in {fleet_dir}; boxes will connect to "
               f"{config.broker_url}")


@app.command()
def csr(
    box_id: Annotated[str, typer.Option("--box-id", help="This box's id (the certificate CN).")],
    data_dir: DataDir = None,
    out: Annotated[Path | None, typer.Option(help="Write the CSR here (default: stdout).")] = None,
    new_key: Annotated[bool, typer.Option(help="Replace an existing MQTT key.")] = False,
) -> None:
    """Make the box's MQTT key (keys/mqtt-key.pem, 0600) if needed and print its CSR."""
    from cloud.fleet.boxkey import make_csr

    pem = _run(lambda: make_csr(data_dir or default_data_dir(), box_id, fresh=new_key))
    if out is None:
        typer.echo(pem.decode("ascii"), nl=False)
    else:
        out.write_bytes(pem)
        typer.echo(f"CSR for {box_id} written to {out}", err=True)


@app.command()
def enroll(
    fleet_dir: FleetDir,
    csr_file: Annotated[Path, typer.Option("--csr", help="The box's CSR (PEM).")],
    tenant: Annotated[str, typer.Option(help="Tenant id.")],
    store: Annotated[str, typer.Option(help="Store id.")],
    register: Annotated[str, typer.Option(help="Register id.")],
    days: Annotated[int, typer.Option(min=1, max=3650, help="Certificate validity.")] = 1095,
    renew: Annotated[bool, typer.Option(help="Allow a box id enrolled before.")] = False,
    out: Annotated[Path | None, typer.Option(
        help="Bundle file (default FLEET/bundles/BOX.tar.gz).")] = None,
    replaces: Annotated[str | None, typer.Option(
        "--replaces", metavar="OLD_BOX", help="The revoked box of the same register this box "
        "replaces: its first start continues that box's chains.")] = None,
) -> None:
    """Sign a box's CSR and write its provisioning bundle."""
    from cloud.fleet.bundle import write_bundle
    from cloud.fleet.enroll import Placement, enroll_box

    paths = FleetPaths(fleet_dir)

    def action() -> Path:
        try:
            pem = csr_file.read_bytes()
        except OSError as error:
            raise FleetError(f"cannot read {csr_file}: {error.strerror}") from error
        enrolled = enroll_box(paths, pem, Placement(tenant, store, register), days=days,
                              renew=renew, replaces=replaces)
        target = out or paths.bundle(enrolled.identity.name)
        write_bundle(target, enrolled.bundle)
        return target

    typer.echo(str(_run(action)))


@app.command("apply")
def apply_(bundle: Annotated[Path, typer.Argument(help="The bundle from `enroll`.")],
           data_dir: DataDir = None) -> None:
    """Install a provisioning bundle on this box and write DATA_DIR/cloud.toml."""
    from cloud.fleet.apply import apply_bundle

    applied = _run(lambda: apply_bundle(data_dir or default_data_dir(), bundle))
    typer.echo(f"box {applied.manifest.box_id} provisioned for {applied.manifest.broker_url}; "
               f"settings in {applied.cloud_toml}")


@app.command()
def revoke(fleet_dir: FleetDir, name: Annotated[str, typer.Argument(
        help="Box id (or service name) to revoke.")]) -> None:
    """Revoke every certificate of a box or service and re-sign the CRL."""
    from cloud.fleet.revoke import revoke as revoke_identity

    identity = _run(lambda: revoke_identity(FleetPaths(fleet_dir), name))
    typer.echo(f"{identity.name} revoked; copy crl.pem to the broker (mosquitto-conf) and "
               "send it SIGHUP")


@app.command()
def crl(fleet_dir: FleetDir) -> None:
    """Re-sign the CRL with fresh dates (run it well within the CRL lifetime)."""
    from cloud.fleet.revoke import refresh_crl

    _run(lambda: refresh_crl(FleetPaths(fleet_dir)))
    typer.echo(str(FleetPaths(fleet_dir).crl))


@app.command()
def service(
    fleet_dir: FleetDir,
    name: Annotated[str, typer.Argument(help="Service identity, e.g. cloud-ingest-1.")],
    role: Annotated[str, typer.Option(help="ingest or hq.")] = "ingest",
    days: Annotated[int, typer.Option(min=1, max=3650, help="Certificate validity.")] = 1095,
) -> None:
    """Issue a cloud service's key and certificate (one per running worker)."""
    from cloud.fleet.enroll import enroll_service

    paths = FleetPaths(fleet_dir)
    _run(lambda: enroll_service(paths, name, role, days=days))
    typer.echo(str(paths.service_dir(name)))


@app.command("list")
def list_(fleet_dir: FleetDir, json_output: Annotated[bool, typer.Option(
        "--json", help="Machine-readable output.")] = False) -> None:
    """List enrolled boxes and services."""
    from cloud.fleet.registry import load_registry

    registry = _run(lambda: load_registry(FleetPaths(fleet_dir)))
    if json_output:
        typer.echo(json.dumps(registry.model_dump(mode="json")["identities"], indent=2))
        return
    for item in registry.identities:
        where = (f"{item.tenant_id}/{item.store_id}/{item.register_id}" if item.kind == "box"
                 else f"role {item.role}")
        typer.echo(f"{item.name}\t{item.kind}\t{item.state}\t{where}\t{item.serial}")


@app.command("mosquitto-conf")
def mosquitto_conf(
    fleet_dir: FleetDir,
    out: Annotated[Path, typer.Option(help="Directory for the broker's files.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="TLS listener port.")] = 8883,
    bind: Annotated[str | None, typer.Option(help="Listen address (default: all).")] = None,
    persistence_dir: Annotated[Path | None, typer.Option(
        help="Mosquitto's persistence directory.")] = Path("/var/lib/mosquitto"),
    install_dir: Annotated[Path | None, typer.Option(
        help="Where the files will live on the broker host (default: --out).")] = None,
) -> None:
    """Render mosquitto.conf, acl.conf and the TLS files for the fleet's broker."""
    from cloud.fleet.mosquitto import BrokerOptions, render_broker

    options = BrokerOptions(port=port, bind=bind, persistence_dir=persistence_dir,
                            install_dir=install_dir)
    typer.echo(str(_run(lambda: render_broker(FleetPaths(fleet_dir), out, options))))
