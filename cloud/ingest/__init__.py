"""The cloud ingest: MQTT journal batches → verified → PostgreSQL, acked by watermark.

``wire`` is the contract with the box (DESIGN §8), ``checks`` what makes a batch acceptable,
``rows`` the columns stored for reporting, ``store`` the SQL, ``apply`` one batch under the
box's row lock, ``parking`` batches waiting for a gap, ``worker`` the MQTT client and its
loops, ``processes`` several workers side by side.
"""
