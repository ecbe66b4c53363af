"""``GET /metrics``: the box in the Prometheus text format (prometheus-client).

Gathered at scrape time, nothing kept between scrapes:

* the journal — ``tillbox_journal_seq`` (last global sequence), ``tillbox_journal_entries_total
  {chain}`` (entries per chain, from the signed heads), ``tillbox_tickets_total`` (sales and
  returns on the ticket chain), ``tillbox_alarms`` (alarms raised now);
* the replication — ``tillbox_replication_enabled``, ``tillbox_replication_backlog_entries``,
  ``tillbox_replication_lag_seconds`` (age of the oldest unacknowledged entry),
  ``tillbox_replication_acked_through``, ``tillbox_replication_link_state{state}`` (1 for the
  current state), ``tillbox_replication_last_ack_timestamp_seconds`` and the counters since
  start (batches, entries, acks, nacks, ack timeouts, connections, failures, refusals).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.http.context import AppServices
from agent.replication.state import LINK_STATES, ReplicationSnapshot

COUNTERS = (
    ("batches_sent", "journal/up batches published"),
    ("entries_sent", "journal entries published (resends included)"),
    ("acks", "journal/ack messages received"),
    ("nacks", "journal/nack messages received"),
    ("ack_timeouts", "rewinds after an ack timeout"),
    ("connections", "connections to the cloud broker"),
    ("connection_failures", "connection attempts failed or links lost"),
    ("refusals", "refusals by the broker (reason code >= 0x80)"),
)


class _Fixed(Collector):
    """The metrics of one scrape."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """The metrics, as gathered."""
        return iter(self.metrics)


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """A gauge without labels."""
    return GaugeMetricFamily(name, documentation, value=value)


def journal_metrics(services: AppServices) -> Iterable[Metric]:
    """The journal's position, its chains and the alarms."""
    heads = services.journal.heads()
    yield gauge("tillbox_journal_seq", "Last global sequence of the journal",
                services.journal.state.seq)
    chains = CounterMetricFamily("tillbox_journal_entries", "Entries per chain",
                                 labels=["chain"])
    for chain in sorted(heads):
        chains.add_metric([chain], heads[chain].chain_seq)
    yield chains
    ticket = heads.get("ticket")
    yield CounterMetricFamily("tillbox_tickets", "Tickets journaled (sales and returns)",
                              value=ticket.chain_seq if ticket else 0)
    yield gauge("tillbox_alarms", "Alarms raised now", len(services.health.alarms))


def replication_metrics(snapshot: ReplicationSnapshot | None) -> Iterable[Metric]:
    """The replication's state and counters (only ``enabled`` when it is off)."""
    yield gauge("tillbox_replication_enabled", "1 when replication to the cloud is on",
                0 if snapshot is None else 1)
    if snapshot is None:
        return
    yield gauge("tillbox_replication_backlog_entries", "Journal entries not acknowledged",
                snapshot.backlog)
    yield gauge("tillbox_replication_lag_seconds", "Age of the oldest unacknowledged entry",
                snapshot.lag_seconds)
    yield gauge("tillbox_replication_acked_through", "The cloud's acknowledged watermark",
                snapshot.acked_through)
    states = GaugeMetricFamily("tillbox_replication_link_state", "1 for the current link state",
                               labels=["state"])
    for state in LINK_STATES:
        states.add_metric([state], 1 if snapshot.link == state else 0)
    yield states
    if snapshot.last_ack_at:
        at = dt.datetime.fromisoformat(snapshot.last_ack_at)
        yield gauge("tillbox_replication_last_ack_timestamp_seconds",
                    "When the cloud last advanced the watermark", at.timestamp())
    for name, documentation in COUNTERS:
        yield CounterMetricFamily(f"tillbox_replication_{name}", documentation,
                                  value=getattr(snapshot.counters, name))


async def render_metrics(services: AppServices) -> bytes:
    """The text exposition of the box's metrics now."""
    replicator = services.replicator
    snapshot = await replicator.snapshot() if replicator is not None else None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed([*journal_metrics(services), *replication_metrics(snapshot)]))
    return generate_latest(registry)


def install_metrics_api(app: FastAPI, services: AppServices) -> None:
    """Add ``GET /metrics`` (open like ``/health``: the box's LAN only)."""

    @app.get("/metrics", tags=["status"], summary="Prometheus metrics",
             response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text format 0.0.4"}})
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(await render_metrics(services),
                                 media_type=CONTENT_TYPE_PLAIN_0_0_4)
