"""The RIFF INFO tags of a WAV file, which mutagen does not read.

WAV files made by ffmpeg, Audacity, Windows Explorer and most rippers keep their title and
artist in a ``LIST``/``INFO`` chunk (``INAM``, ``IART``, ...), not in an ID3 chunk; without
this such a song gets a caption made from its file name. Values are bytes: UTF-8 from ffmpeg,
a local codepage (CP949, Shift-JIS) from older Windows tools, so decoding is left to the
caller's legacy-encoding rules.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

# INFO chunk id -> AudioInfo field
FIELDS = {b"INAM": "title", b"IART": "artist", b"IPRD": "album", b"IGNR": "genre",
          b"ICRD": "year"}
_MAX_CHUNKS = 64        # a WAV has a handful; a corrupt one is never walked for long
_MAX_INFO = 1 << 16     # INFO text beyond 64 KB is not tags


def read_info(fh: BinaryIO) -> dict[str, bytes]:
    """field -> raw value of the file's RIFF INFO chunk ({} for anything else)."""
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return {}
    found: dict[str, bytes] = {}
    offset = 12
    for _ in range(_MAX_CHUNKS):
        fh.seek(offset)
        header = fh.read(8)
        if len(header) < 8:
            break
        chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
        # Every INFO list counts: ffmpeg writes one with only its own name (ISFT), and a
        # tagger may append another after the audio.
        if chunk == b"LIST" and size >= 4 and fh.read(4) == b"INFO":
            for name, value in _fields(fh.read(min(size - 4, _MAX_INFO))).items():
                found.setdefault(name, value)
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    return found


def _fields(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        value = data[pos + 8:pos + 8 + size].split(b"\0", 1)[0].strip()
        name = FIELDS.get(chunk)
        if name is not None and value and name not in out:
            out[name] = value
        pos += 8 + size + (size & 1)
    return out
