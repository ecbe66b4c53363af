"""Replication of the journal to the cloud over MQTT (DESIGN §8), and the cloud's downlink.

``replicator.Replicator.open(services)`` builds it when ``[cloud] enabled``; the daemon runs its
loop (``replicator.tasks()``). Modules: ``replicator`` (the publish/ack loop), ``link``
(connection, TLS, refusals, backoff), ``batches`` (``journal/up`` payloads), ``watermark`` (the
persisted ``acked_through`` and tail protection), ``downlink`` and ``commands`` (desired
configuration, remote commands), ``logs`` (recent log lines), ``state`` and ``metrics`` (what it
shows in ``/health``, on the status page and in ``/metrics``). Importing this package loads no
MQTT code: only ``replicator`` does, and the box imports it only when the cloud is enabled.
"""
