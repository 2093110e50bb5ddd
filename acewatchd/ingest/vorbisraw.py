"""The raw bytes of a FLAC's or Ogg file's Vorbis comments, for tags written in a legacy codepage.

Vorbis comments are UTF-8 by their spec, but rippers of the 2000s wrote CP949, Shift-JIS or
GBK bytes into them, and mutagen decodes those with replacement characters (``���ȣ``): the
bytes are gone by the time its tags are read. When a tag comes out with U+FFFD, this reads the
comment block again, undecoded, so the legacy-encoding rules can decode it properly.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

KINDS = ("FLAC", "OggVorbis", "OggOpus")
_LIMIT = 1 << 20            # a comment block beyond 1 MB holds pictures, not tags
_MAX_BLOCKS = 128
_MAX_PAGES = 64
_HEADERS = {"OggVorbis": b"\x03vorbis", "OggOpus": b"OpusTags"}


def read_raw(fh: BinaryIO, kind: str) -> dict[str, list[bytes]]:
    """lower-case key -> raw values, {} when the block cannot be found or read."""
    from mutagen import MutagenError

    try:
        data = _flac_block(fh) if kind == "FLAC" else _ogg_packet(fh, kind)
        return {} if data is None else _comments(data)
    except (OSError, struct.error, ValueError, EOFError, IndexError, MutagenError):
        return {}  # a broken block only loses what its tags would have said


def _flac_block(fh: BinaryIO) -> bytes | None:
    fh.seek(0)
    head = fh.read(10)
    offset = 0
    if head[:3] == b"ID3" and len(head) == 10:  # an ID3v2 tag in front, which FLAC allows
        size = 0
        for byte in head[6:10]:
            size = (size << 7) | (byte & 0x7F)
        offset = 10 + size + (10 if head[5] & 0x10 else 0)
    fh.seek(offset)
    if fh.read(4) != b"fLaC":
        return None
    for _ in range(_MAX_BLOCKS):
        header = fh.read(4)
        if len(header) < 4:
            return None
        last, kind, size = header[0] & 0x80, header[0] & 0x7F, int.from_bytes(header[1:], "big")
        if kind == 4:  # VORBIS_COMMENT
            data = fh.read(min(size, _LIMIT))
            return data if len(data) == size else None  # cut short, or pictures: not read
        if last:
            return None
        fh.seek(size, 1)
    return None


def _ogg_packet(fh: BinaryIO, kind: str) -> bytes | None:
    """The second packet of the file's first stream: its comment header."""
    from mutagen.ogg import OggPage

    fh.seek(0)
    first = OggPage(fh)
    pages = [first]
    for _ in range(_MAX_PAGES):
        packets = OggPage.to_packets(pages, strict=False)
        if len(packets) > 2 or (len(packets) == 2 and pages[-1].complete):
            break
        page = OggPage(fh)
        if page.serial == first.serial:
            pages.append(page)
    else:
        return None
    header = _HEADERS[kind]
    packet = packets[1]
    return packet[len(header):] if packet.startswith(header) else None


def _comments(data: bytes) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    (vendor,) = struct.unpack_from("<I", data, 0)
    pos = 4 + vendor
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    for _ in range(min(count, 4096)):
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + length > len(data):
            break  # a cut entry would be a cut tag
        entry = data[pos:pos + length]
        pos += length
        key, sep, value = entry.partition(b"=")
        if sep:
            out.setdefault(key.decode("ascii", "replace").lower(), []).append(value)
    return out
