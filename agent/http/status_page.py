"""The status page at ``/``: what a technician reads on the box, as server-rendered HTML.

``render(view, language)`` is pure: it turns a ``StatusView`` (a snapshot gathered by the app)
into one HTML document with a little inline CSS, no script, and a 10-second refresh. Every value
from the box passes through ``html.escape``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from agent.i18n import LANGUAGES, Translate, translator
from agent.observability import Alarm, DeviceStatus, VerificationSummary
from agent.replication.state import ReplicationSnapshot
from agent.settings import StoreIdentity

REFRESH_SECONDS = 10

CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;padding:.8rem 1.2rem;
 background:#1d2330;color:#fff}
header h1{font-size:1.2rem;margin:0;flex:1}
header a{color:#cfd6e4;margin-left:.4rem}
.badge{padding:.25rem .7rem;border-radius:1rem;font-weight:600}
.ok{background:#1f8a4c;color:#fff}.alarm{background:#c62828;color:#fff}.starting{background:#b26a00;color:#fff}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(21rem,1fr));gap:1rem;
 padding:1rem}
section{background:#fff;border-radius:.5rem;padding:.8rem 1rem;
 box-shadow:0 1px 3px rgba(0,0,0,.12)}
h2{font-size:1rem;margin:.2rem 0 .6rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #eceef2;vertical-align:top}
th{font-weight:500;color:#5a6275}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.code{font-family:ui-monospace,monospace;font-size:2.2rem;letter-spacing:.3rem}
.muted{color:#5a6275;font-size:.85rem}
ul.alarms{color:#c62828;padding-left:1.2rem}
"""


@dataclass(frozen=True)
class ChainRow:
    """One chain's signed head: its last chain sequence number and global sequence."""

    chain: str
    chain_seq: int
    seq: int


@dataclass(frozen=True)
class StatusView:
    """Everything the status page shows, gathered at request time."""

    status: str
    store: StoreIdentity
    store_id: str
    register_id: str
    box_key_id: str
    version: str
    started_at: str
    devices: Sequence[DeviceStatus]
    global_seq: int
    chains: Sequence[ChainRow]
    last_day_closure: str | None
    heads_checked_at: str | None
    last_verification: VerificationSummary | None
    alarms: Sequence[Alarm]
    hostname: str
    listen: str
    addresses: Sequence[tuple[str, str]]
    pairing_code: str
    paired_frontends: int = 0
    initial_admin_pin: str | None = None
    replication: ReplicationSnapshot | None = None


def render(view: StatusView, language: str) -> str:
    """Return the status page for ``view`` in ``language``."""
    t = translator(language)
    sections = [_identity(view, t), _journal(view, t), _devices(view, t),
                _replication(view, t), _network(view, t), _pairing(view, t)]
    return (
        f'<!DOCTYPE html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>tillbox — {escape(t('page_title'))}</title><style>{CSS}</style></head><body>"
        f"{_header(view, language, t)}<main>{''.join(sections)}</main>"
        f'<footer class="muted" style="padding:0 1rem 1rem">{escape(t("refresh_note"))}</footer>'
        "</body></html>"
    )


def _header(view: StatusView, language: str, t: Translate) -> str:
    links = " ".join(
        f'<a href="?lang={code}"{" aria-current=page" if code == language else ""}>'
        f"{code.upper()}</a>" for code in LANGUAGES)
    return (f"<header><h1>tillbox — {escape(t('page_title'))} · {escape(view.store.name)}</h1>"
            f'<span class="badge {escape(view.status)}" id="status">'
            f"{escape(t('status_' + view.status))}</span>"
            f'<nav aria-label="{escape(t("language"))}">{links}</nav></header>')


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{escape(title)}</h2>{body}</section>'


def _rows(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; values are already escaped HTML."""
    cells = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in rows)
    return f"<table>{cells}</table>"


def _when(text: str | None, t: Translate) -> str:
    """``2026-11-20T09:00:00.123456Z`` as ``2026-11-20 09:00:00 UTC``."""
    if not text:
        return escape(t("never"))
    return escape(text[:19].replace("T", " ") + (" UTC" if text.endswith("Z") else ""))


def _identity(view: StatusView, t: Translate) -> str:
    store = view.store
    return _section("identity", t("section_identity"), _rows([
        (t("store_name"), escape(store.name)),
        (t("address"), "<br>".join(escape(line) for line in store.address)),
        (t("siret"), escape(store.siret)),
        (t("naf"), escape(store.naf)),
        (t("vat_number"), escape(store.vat_number)),
        (t("store_id"), escape(view.store_id)),
        (t("register"), f'<span id="register">{escape(view.register_id)}</span>'),
        (t("box_key"), f'<code id="box-key">{escape(view.box_key_id)}</code>'),
        (t("version"), f'<span id="version">{escape(view.version)}</span>'),
        (t("started_at"), _when(view.started_at, t)),
    ]))


def _devices(view: StatusView, t: Translate) -> str:
    rows = []
    for device in view.devices:
        detail = t(f"reason_{device.reason}") if device.reason else t(f"state_{device.state}")
        state = f"{t('driver_' + device.driver)} — {detail}"
        rows.append((t(f"device_{device.kind}"),
                     f'<span data-device="{escape(device.kind)}" '
                     f'data-state="{escape(device.state)}">{escape(state)}</span>'))
    return _section("devices", t("section_devices"), _rows(rows))


def _journal(view: StatusView, t: Translate) -> str:
    head = (f"<tr><th>{escape(t('chain'))}</th><th class=num>{escape(t('chain_seq'))}</th>"
            f"<th class=num>{escape(t('seq_column'))}</th></tr>")
    body = "".join(
        f"<tr><td>{escape(t('chain_' + row.chain))}</td>"
        f'<td class="num" data-chain="{escape(row.chain)}">{row.chain_seq}</td>'
        f'<td class="num">{row.seq}</td></tr>' for row in view.chains)
    chains = (f"<table>{head}{body}</table>" if view.chains
              else f"<p>{escape(t('no_entries'))}</p>")
    summary = _rows([
        (t("global_seq"), f'<span id="global-seq">{view.global_seq}</span>'),
        (t("last_day_closure"), escape(view.last_day_closure or t("never"))),
        (t("heads_checked"), _when(view.heads_checked_at, t)),
        (t("last_verification"), _verification(view.last_verification, t)),
    ])
    return _section("journal", t("section_journal"),
                    summary + chains + _alarms(view.alarms, t))


def _verification(summary: VerificationSummary | None, t: Translate) -> str:
    if summary is None:
        return escape(t("never"))
    outcome = (t("verification_clean") if summary.clean
               else t("verification_findings", count=summary.findings))
    return f"{_when(summary.at, t)} — {escape(outcome)}"


def _alarms(alarms: Sequence[Alarm], t: Translate) -> str:
    if not alarms:
        return f'<p id="alarms">{escape(t("no_alarms"))}</p>'
    items = "".join(
        f"<li><b>{escape(alarm.code)}</b>"
        f"{' [' + escape(alarm.chain) + ']' if alarm.chain else ''}: {escape(alarm.message)} "
        f'<span class="muted">{_when(alarm.raised_at, t)}</span></li>' for alarm in alarms)
    return f'<h2>{escape(t("alarms"))}</h2><ul class="alarms" id="alarms">{items}</ul>'


def _replication(view: StatusView, t: Translate) -> str:
    state = view.replication
    if state is None:
        return _section("replication", t("section_replication"),
                        f"<p>{escape(t('replication_off'))}</p>")
    rows = [
        (t("replication_link"), f'<span id="replication-link" data-state="{escape(state.link)}">'
                                f"{escape(t('link_' + state.link))}</span>"),
        (t("replication_broker"), f"<code>{escape(state.broker)}</code>"),
        (t("replication_box_id"), f"<code>{escape(state.box_id)}</code>"),
        (t("replication_backlog"), f'<span id="replication-backlog">{state.backlog}</span>'),
        (t("replication_lag"), escape(t("seconds", value=round(state.lag_seconds)))),
        (t("replication_acked"), str(state.acked_through)),
        (t("replication_last_ack"), _when(state.last_ack_at, t)),
    ]
    if state.last_error:
        rows.append((t("replication_last_error"), escape(state.last_error)))
    return _section("replication", t("section_replication"), _rows(rows))


def _network(view: StatusView, t: Translate) -> str:
    addresses = "<br>".join(f"{escape(address)} <span class=muted>({escape(name)})</span>"
                            for name, address in view.addresses)
    return _section("network", t("section_network"), _rows([
        (t("hostname"), escape(view.hostname)),
        (t("listening"), f"<code>http://{escape(view.listen)}/</code>"),
        (t("addresses"), addresses or escape(t("no_addresses"))),
    ]))


def _pairing(view: StatusView, t: Translate) -> str:
    body = (f'<div class="code" id="pairing-code">{escape(view.pairing_code)}</div>'
            f'<p class="muted">{escape(t("pairing_note"))}</p>'
            + _rows([(t("paired_frontends"), str(view.paired_frontends))]))
    if view.initial_admin_pin is not None:
        body += (_rows([(t("initial_pin"),
                         f'<code id="initial-pin">{escape(view.initial_admin_pin)}</code>')])
                 + f'<p class="muted">{escape(t("initial_pin_note"))}</p>')
    return _section("pairing", t("section_pairing"), body)
