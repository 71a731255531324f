"""TensorBoard's event file format, written without TensorFlow or TensorBoard installed.

An event file (`events.out.tfevents.<time>.<host>.<pid>.<n>`) is a TFRecord stream:
each record is the length (uint64, little-endian), its masked CRC-32C, the data and the
data's masked CRC-32C. Each record's data is a serialized `tensorboard.Event`; this writes
the two kinds TensorBoard reads scalars from:

    Event { double wall_time = 1; int64 step = 2; string file_version = 3;
            Summary summary = 5; }
    Summary { repeated Value value = 1; }
    Summary.Value { string tag = 1; float simple_value = 2; }

(the protobuf wire encoding of those fields is done here by hand: four field types).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterable
from pathlib import Path

FILE_VERSION = "brain.Event:2"
_CRC32C_POLY = 0x82F63B78  # Castagnoli, reversed
_MASK_DELTA = 0xA282EAD8


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC32C_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)


def record(data: bytes) -> bytes:
    """One TFRecord holding `data`."""
    length = struct.pack("<Q", len(data))
    return length + _masked(length) + data + _masked(data)


# -- protobuf wire format, the four field kinds an Event needs -------------------------------
def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # int64: negative numbers as their two's complement
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(
    wall_time: float, step: int = 0, *, file_version: str = "", summary: bytes = b""
) -> bytes:
    out = _varint(1 << 3 | 1) + struct.pack("<d", wall_time)
    if step:
        out += _varint(2 << 3) + _varint(step)
    if file_version:
        out += _bytes_field(3, file_version.encode())
    if summary:
        out += _bytes_field(5, summary)
    return out


def scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """An Event holding one scalar: what `SummaryWriter.add_scalar` writes (its older,
    `simple_value` form, which every TensorBoard reads)."""
    value_msg = _bytes_field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value)
    return _event(wall_time, step, summary=_bytes_field(1, value_msg))


class EventFileWriter:
    """Appends scalar events to a new event file in `folder`."""

    _count = 0

    def __init__(self, folder: str | os.PathLike[str], suffix: str | None = None) -> None:
        """A file named as TensorBoard's writers name them, or `events.out.tfevents.<suffix>`
        (a stable name, for a file rewritten whole)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        EventFileWriter._count += 1
        if suffix is None:
            suffix = (
                f"{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{EventFileWriter._count}"
            )
        self.path = self.folder / f"events.out.tfevents.{suffix}"
        self._file = self.path.open("wb")
        self._file.write(record(_event(time.time(), file_version=FILE_VERSION)))

    def add_scalars(self, points: Iterable[tuple[str, float, int, float]]) -> None:
        """(tag, value, step, wall time in seconds) each."""
        self._file.write(b"".join(record(scalar_event(*p)) for p in points))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
