"""ESC/POS receipt printers: status codec, drivers over TCP/serial/device files, simulators.

Modules: ``status`` (sans-I/O status requests/parsing and the drawer pulse), ``protocol`` (the
async ``ReceiptPrinter``), ``stream`` (the job/status driver over any byte link), ``network``
(TCP 9100), ``serial_printer`` (serial ports), ``usb_printer`` (pyusb, bulk endpoints),
``file_printer`` (``/dev/usb/lpN``), ``jobs`` (the durable print-job queue: no receipt lost or
printed twice), ``drawer`` (kick, open sensor with configurable polarity, left-open events),
``simulator`` (a wire-level printer on TCP, with faults), ``pty_simulator`` (the same on a
pty), ``usb_backend_sim`` (the same behind a pyusb backend), ``cli_sim`` (the standalone
simulator command).

Pinning the code page with python-escpos 3.1 (measured on 3.1, see the contract tests):

- Left alone, the encoder picks a page per character among all pages of the profile, lowest
  number first: ``Dummy().text("€ é")`` emits ``ESC t 15`` (ISO-8859-7, "€" = 0xA4) then
  ``ESC t 0`` for "é". Many printers have no page 15: the "€" comes out wrong.
- ``printer.charcode("CP858")`` emits ``ESC t 19`` at once and turns the automatic choice off:
  every later ``text()`` is encoded with CP858 ("€" = 0xD5, "é à ç" = 0x82 0x85 0x87). Same with
  ``charcode("CP866")`` (``ESC t 17``) for Cyrillic. The default profile is enough; a named
  profile (``Dummy(profile="TM-T88V")``) only narrows the pages allowed.
- ``hw("INIT")`` (``ESC @``) resets the printer to page 0 but python-escpos still believes the
  page is set and emits no new ``ESC t``: call ``charcode`` **after** ``hw("INIT")``.
- ``Dummy(magic_encode_args={"encoding": "CP858", "disabled": True})`` encodes with CP858 but
  never sends ``ESC t 19``: it assumes the printer already is on that page. Do not use it.
- ``cashdraw(2)`` sends ``ESC p 0 50 50`` (100 ms); the driver builds its own pulse
  (``status.drawer_kick``) so the timing comes from configuration.
"""
