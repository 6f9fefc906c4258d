"""AEDAT readers: AEDAT 3.1 (libcaer/cAER, DVS128 Gesture) and AEDAT 2.0 (jAER, CIFAR10-DVS).

Both start with ASCII header lines that begin with ``#``; the first is ``#!AER-DAT<version>``.

AEDAT 3.1 (iniVation; libcaer ``events/common.h`` and ``events/polarity.h``), little-endian.
The header ends with the line ``#!END-HEADER``. Then event packets follow, each a 28-byte header::

    int16 eventType, int16 eventSource, int32 eventSize, int32 eventTSOffset,
    int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid

and ``eventCapacity * eventSize`` bytes of events, of which the first ``eventNumber`` are used.
Polarity events (eventType 1, eventSize 8, eventTSOffset 4) are ``uint32 data, int32 timestamp``:
bit 0 of data is the validity mark (invalid events are skipped), bit 1 the polarity (1 = ON),
bits 2-16 y, bits 17-31 x, origin at the top-left. The full timestamp in us is
``eventTSOverflow << 31 | timestamp``. Packets of other types (special, IMU, frame ...) are
skipped. SpikingJelly and the MLF code decode the same bits but ignore the validity mark and,
for MLF, the overflow.

AEDAT 2.0 (jAER): after the header, big-endian pairs ``int32 address, int32 timestamp`` (us).
The meaning of the address depends on the sensor; see ``cifar10_dvs.py`` for DVS128.

AEDAT 4.0 (iniVation DV: flatbuffers, often LZ4-compressed) is recognised and refused.
Truncated or corrupt files raise :class:`zoo.data.errors.FormatError` with the byte offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..files import read_file
from .stream import EVENT_DTYPE, MAX_RECORDING_BYTES, check_events, make_events

PACKET_HEADER = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1
POLARITY_DTYPE = np.dtype([("data", "<u4"), ("t", "<i4")])


@dataclass(frozen=True)
class Header:
    """An AEDAT file's text header: its version string, its lines and where the data starts."""

    version: str
    lines: tuple[str, ...]
    data_offset: int


def read_header(path: Path, data: bytes, expect: str) -> Header:
    """Parse the ``#`` header of ``data`` (the bytes of ``path``), requiring version ``expect``."""
    if not data.startswith(b"#!AER-DAT"):
        raise FormatError(path, f"not an AEDAT file: it does not start with '#!AER-DAT{expect}' "
                                f"(found {data[:16]!r})", 0)
    newline = data.find(b"\n")
    first = data if newline < 0 else data[:newline]
    version = first[len(b"#!AER-DAT"):len(b"#!AER-DAT") + 16].strip().decode("ascii", "replace")
    if version.split(".")[0] != expect.split(".")[0]:
        readers = {"2": "read_aedat2", "3": "read_aedat31"}
        other = readers.get(version.split(".")[0])
        advice = f"; read it with {other}" if other else " and is not supported"
        raise FormatError(path, f"this is an AEDAT {version} file, expected AEDAT {expect}{advice}", 0)
    lines, pos = [], 0
    while pos < len(data) and data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        line = data[pos:end].rstrip(b"\r\n").decode("latin1")
        lines.append(line)
        pos = end
        if expect.startswith("3") and line == "#!END-HEADER":
            return Header(version, tuple(lines), pos)
    if expect.startswith("3"):
        raise FormatError(path, "AEDAT 3 header has no '#!END-HEADER' line before the data", pos)
    return Header(version, tuple(lines), pos)


def read_aedat31(path: str | Path, sensor_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode the polarity events of an AEDAT 3.1 file into an event array.

    Refused with the byte offset: a truncated or inconsistent packet header, a negative
    eventTSOverflow or timestamp (libcaer timestamps are 31-bit, non-negative) and, with
    ``sensor_size`` ``(H, W)``, a valid event outside the sensor.
    """
    path = Path(path)
    data = read_file(path, MAX_RECORDING_BYTES, "AEDAT 3.1 recording")
    header = read_header(path, data, "3.1")
    for line in header.lines:
        if line.startswith("#Format:") and line.split(":", 1)[1].strip() != "RAW":
            raise FormatError(path, f"unsupported AEDAT 3 {line[1:80]!r} (only RAW)", 0)
    chunks, pos = [], header.data_offset
    while pos < len(data):
        packet = read_packet_header(path, data, pos)
        if packet.etype == POLARITY_EVENT:
            chunks.append(polarity_events(path, data, packet, sensor_size))
        pos = packet.end
    return np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)


@dataclass(frozen=True)
class Packet:
    """One AEDAT 3.1 packet header: where it is, and the fields the reader uses."""

    offset: int
    etype: int
    size: int
    ts_offset: int
    overflow: int
    capacity: int
    number: int

    @property
    def start(self) -> int:
        return self.offset + PACKET_HEADER.size

    @property
    def end(self) -> int:
        return self.start + self.capacity * self.size


def read_packet_header(path: Path, data: bytes, pos: int) -> Packet:
    """The packet header at ``pos``, checked for consistency and against the file's length."""
    if len(data) - pos < PACKET_HEADER.size:
        raise FormatError(path, f"truncated packet header: {len(data) - pos} of 28 bytes", pos)
    etype, _, size, ts_offset, overflow, capacity, number, valid = PACKET_HEADER.unpack_from(data, pos)
    if size <= 0 or capacity < 0 or not 0 <= number <= capacity or not 0 <= valid <= number:
        raise FormatError(path, f"corrupt packet header (eventType {etype}, eventSize {size}, "
                                f"eventCapacity {capacity}, eventNumber {number}, "
                                f"eventValid {valid})", pos)
    packet = Packet(pos, etype, size, ts_offset, overflow, capacity, number)
    if packet.end > len(data):
        raise FormatError(path, f"truncated packet: its header declares {capacity} events of "
                                f"{size} bytes, up to byte {packet.end}, but the file ends at byte "
                                f"{len(data)}", pos)
    if etype == POLARITY_EVENT and (size != 8 or ts_offset != 4):
        raise FormatError(path, f"polarity packet with eventSize {size} and eventTSOffset "
                                f"{ts_offset} (expected 8 and 4)", pos)
    if etype == POLARITY_EVENT and overflow < 0:
        raise FormatError(path, f"polarity packet with a negative eventTSOverflow {overflow}", pos + 12)
    return packet


def polarity_events(path: Path, data: bytes, packet: Packet,
                    sensor_size: tuple[int, int] | None) -> np.ndarray:
    """The valid events of a polarity packet (the first eventNumber slots, validity bit set)."""
    raw = np.frombuffer(data, POLARITY_DTYPE, count=packet.number, offset=packet.start)
    keep = np.flatnonzero(raw["data"] & 1)
    word, stamp = raw["data"][keep].astype(np.int64), raw["t"][keep].astype(np.int64)
    x, y, p = (word >> 17) & 0x7FFF, (word >> 2) & 0x7FFF, (word >> 1) & 1
    check_events(path, x, y, p, stamp, sensor_size or (0x8000, 0x8000),
                 lambda i: packet.start + 8 * int(keep[i]))
    return make_events((np.int64(packet.overflow) << 31) | stamp, x, y, p)


@dataclass(frozen=True)
class Aedat2:
    """The raw content of an AEDAT 2.0 file: header and undecoded address/timestamp words."""

    header: Header
    address: np.ndarray  # uint32
    timestamp: np.ndarray  # int64, microseconds


def read_aedat2(path: str | Path) -> Aedat2:
    """Read an AEDAT 2.0 (jAER) file: header plus big-endian ``(address, timestamp)`` pairs."""
    path = Path(path)
    data = read_file(path, MAX_RECORDING_BYTES, "AEDAT 2.0 recording")
    header = read_header(path, data, "2.0")
    body = len(data) - header.data_offset
    if body % 8:
        whole = header.data_offset + body - body % 8
        raise FormatError(path, f"truncated event: {body % 8} trailing byte(s) of an 8-byte "
                                f"(address, timestamp) pair after {body // 8} whole events", whole)
    words = np.frombuffer(data, ">u4", offset=header.data_offset).reshape(-1, 2)
    return Aedat2(header, words[:, 0].astype(np.uint32), words[:, 1].astype(np.int64))
