"""ESC/POS rendering: pinned code pages, golden bytes, QR and cut, and a parse back to text."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from drivers.receipt.document import Barcode, Cut, Document, Logo, Paper, QrCode, Rule, Text
from drivers.receipt.escpos_render import CYRILLIC, render_escpos
from drivers.receipt.layout import Style, ticket_document
from drivers.receipt.samples import french_sale
from drivers.receipt.text_render import render_text

ESC, GS = 0x1B, 0x1D
PAGES = {0: "cp437", 17: "cp866", 19: "cp858"}


@dataclass
class Parsed:
    """What a minimal ESC/POS reader saw: printed lines and the commands met on the way."""

    lines: list[tuple[str, int]] = field(default_factory=list)
    commands: list[tuple[str, bytes]] = field(default_factory=list)


def length_at(data: bytes, i: int) -> int:
    """A little-endian 16-bit parameter."""
    return data[i] + 256 * data[i + 1]


def command(data: bytes, i: int) -> tuple[str, bytes, int]:
    """Decode the command at ``i``: its name, its parameter bytes, and where the next begins."""
    lead, op = data[i], data[i + 1]
    if lead == ESC and op in b"@":
        return "init", b"", i + 2
    if lead == ESC and op in b"t!Ead":
        return f"ESC {chr(op)}", data[i + 2:i + 3], i + 3
    if lead == GS and op in b"hwHV!":
        return f"GS {chr(op)}", data[i + 2:i + 3], i + 3
    if lead == GS and data[i + 1:i + 3] == b"(k":
        end = i + 5 + length_at(data, i + 3)
        return "GS ( k", data[i + 5:end], end
    if lead == GS and data[i + 1:i + 3] == b"v0":
        size = length_at(data, i + 4) * length_at(data, i + 6)
        return "GS v 0", data[i + 3:i + 8], i + 8 + size
    if lead == GS and op == ord("k"):
        return "GS k", data[i + 2:i + 4 + data[i + 3]], i + 4 + data[i + 3]
    raise AssertionError(f"unknown command {data[i:i + 4].hex(' ')} at {i}")


def parse(data: bytes) -> Parsed:
    """Read ESC/POS bytes back into lines (text, size multiplier) and commands."""
    parsed, text, page, scale, i = Parsed(), bytearray(), "cp437", 1, 0
    while i < len(data):
        if data[i] in (ESC, GS):
            name, args, i = command(data, i)
            parsed.commands.append((name, args))
            page = PAGES[args[0]] if name == "ESC t" else page
            scale = 2 if name == "ESC !" and args[0] & 0x30 else 1 if name == "ESC !" else scale
        elif data[i] == 0x0A:
            parsed.lines.append((text.decode(page), scale))
            text, i = bytearray(), i + 1
        else:
            assert data[i] >= 0x20, f"control byte {data[i]:#x} at {i}"
            text.append(data[i])
            i += 1
    assert not text, "text left without a line feed"
    return parsed


def test_golden_bytes_of_a_french_line_and_a_cut() -> None:
    """Init, ``ESC t 19`` (CP858), "€" as 0xD5, feed and partial cut: exact bytes."""
    document = Document(Paper.MM58, (Text("Total 12,34 €"), Cut()))
    assert render_escpos(document) == bytes.fromhex(
        "1b40 1b7413" "546f74616c2031322c333420d5 0a" "1b6406 1d5601")


def test_full_cut_is_gs_v_0() -> None:
    """A full cut is ``GS V 0`` after the feed."""
    assert render_escpos(Document(Paper.MM80, (Cut(partial=False),))).endswith(
        bytes.fromhex("1b6406 1d5600"))


def test_french_ticket_pins_cp858_once_before_any_text() -> None:
    """A French ticket selects CP858 right after init and never switches code page."""
    data = render_escpos(ticket_document(french_sale()))
    assert data.startswith(bytes.fromhex("1b40 1b7413"))
    parsed = parse(data)
    assert [args for name, args in parsed.commands if name == "ESC t"] == [b"\x13"]
    assert "19,75 €".encode("cp858") == b"19,75 \xd5"
    assert b"19,75 \xd5" in data
    assert "Opérateur".encode("cp858") in data


def test_russian_profile_pins_cp866_and_spells_the_euro() -> None:
    """The Cyrillic profile sends ``ESC t 17``, Cyrillic in CP866, "€" as EUR, accents dropped."""
    data = render_escpos(ticket_document(french_sale(), Style(lang="ru")), CYRILLIC)
    assert data.startswith(bytes.fromhex("1b40 1b7411"))
    assert "КАССОВЫЙ ЧЕК".encode("cp866") in data
    assert b"19,75 EUR" in data
    assert b"Eclair au caf" in data
    assert not [text for text, _ in parse(data).lines if "?" in text]


def test_qr_payload_is_sent_natively() -> None:
    """The e-receipt URL is stored with ``GS ( k`` function 180 and printed with 181."""
    url = "https://tillbox.example/r/R01-000042?k=9f2c41"
    data = render_escpos(ticket_document(french_sale()))
    store = b"\x1d(k" + (len(url) + 3).to_bytes(2, "little") + b"1P0" + url.encode()
    assert store in data
    assert data.index(store) < data.index(b"\x1d(k\x03\x001Q0")
    assert b"\x1d(k\x03\x001C\x06" in data


def test_double_size_and_bold_are_switched_on_and_off() -> None:
    """The merchant name is double size and bold; the text after it is back to normal."""
    data = render_escpos(ticket_document(french_sale()))
    name = data.index(b"Boulangerie Dupont")
    assert data[:name].endswith(b"\x1b!\x30\x1bE\x01   ")
    assert data[name:].startswith(b"Boulangerie Dupont\n\x1bE\x00\x1b!\x00")


def test_bytes_read_back_to_the_text_rendering() -> None:
    """Parsed back, the bytes give the words of the text rendering (less the QR data)."""
    document = ticket_document(french_sale(), Style(Paper.MM58))
    parsed = parse(render_escpos(document))
    assert all(len(text) <= 32 // scale for text, scale in parsed.lines)
    printed = "".join("".join(text.split()) for text, _ in parsed.lines)
    url = "https://tillbox.example/r/R01-000042?k=9f2c41"
    assert printed == "".join(render_text(document).split()).replace(url, "")
    assert ("GS V", b"\x01") in parsed.commands


def test_barcode_logo_and_rule_bytes() -> None:
    """A barcode is ``GS k`` function B; a logo is a ``GS v 0`` raster as wide as the paper."""
    png = io.BytesIO()
    Image.new("L", (100, 20), 0).save(png, format="PNG")
    document = Document(Paper.MM80, (Barcode("3017620422003", "EAN13"), Logo(png.getvalue()),
                                     Rule("="), QrCode("x", 3)))
    data = render_escpos(document)
    assert b"\x1dkC\x0d3017620422003" in data
    assert b"\x1dv0\x00\x48\x00\x14\x00" in data
    assert b"=" * 48 + b"\n" in data
    names = [name for name, _ in parse(data).commands]
    assert names.count("GS v 0") == 1
    assert names.count("GS k") == 1


def test_receipt_bench_runs_and_prints_its_ratio() -> None:
    """``bench/receipt.py`` with a few runs exits 0 and prints the ratio to the 5 ms goal."""
    bench = Path(__file__).resolve().parents[2] / "bench" / "receipt.py"
    result = subprocess.run([sys.executable, str(bench), "--runs", "20", "--warmup", "2"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert re.search(r"ratio \(mean/goal\) \d+\.\d\d", result.stdout), result.stdout
