"""The gate in front of every fiscal write made on a user's behalf.

While an integrity alarm waits for an admin's acknowledgement (``POST /v1/alarms/ack``), sales,
returns, cash movements and closures are refused with 409 ``integrity_alarm``: a journal that
may have been tampered with must be looked at before anything is added to it.
"""

from __future__ import annotations

from agent.errors import ProblemError
from agent.observability import Health


def ensure_fiscal_writes(health: Health) -> None:
    """Refuse (409 ``integrity_alarm``) while an alarm is not acknowledged."""
    if not health.fiscal_writes_allowed:
        codes = ", ".join(sorted({alarm.code for alarm in health.alarms}))
        raise ProblemError(409, "integrity_alarm",
                           f"fiscal writes are suspended until an admin acknowledges: {codes}")
