"""The one exception tree of the certified journal.

::

    FiscalError
     ├── InvalidInput        bad caller input; names the offending field; nothing was written
     │    └── OverReturn     a return asks for more than is left to return
     ├── PeriodClosed        a write dated in a business day/month/year already closed
     ├── DayNotClosed        sales refused: the previous business day is still open past the grace
     ├── NotFound            a referenced record (original ticket, copy source) does not exist
     ├── JournalCorrupt      the stored journal cannot be read back as written
     ├── JournalBusy         another process has this journal open for writing
     └── KeyFileError        the box key cannot be loaded or created

Every error carries a stable machine ``code``; frontends map it to HTTP problem+json or MQTT
replies without parsing messages.
"""

from __future__ import annotations


class FiscalError(Exception):
    """Base of every error raised by ``fiscal``."""

    code = "fiscal_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.code}: {self.message}{where}"


class InvalidInput(FiscalError):
    """Caller input breaks a fiscal rule; the journal is unchanged."""

    code = "invalid_input"


class OverReturn(InvalidInput):
    """A return asks for more than was sold and not yet returned."""

    code = "over_return"


class PeriodClosed(FiscalError):
    """The write falls in a period that a signed closure already sealed."""

    code = "period_closed"


class DayNotClosed(FiscalError):
    """Sales are refused until the previous business day is closed."""

    code = "day_not_closed"


class NotFound(FiscalError):
    """A referenced record does not exist in this journal."""

    code = "not_found"


class JournalCorrupt(FiscalError):
    """Stored data cannot be read back as it was written."""

    code = "journal_corrupt"


class JournalBusy(FiscalError):
    """Another process (a running box, another tool) holds this journal open for writing."""

    code = "journal_busy"


class KeyFileError(FiscalError):
    """The box key file is missing, unreadable or has unsafe permissions."""

    code = "key_file"
