"""The state file: one payload in a checked envelope, replaced atomically and durably.

Layout (all integers little-endian)::

    b"RFMDAILY"            8 bytes, what the file is
    format version         u32
    payload length         u64
    SHA-256                32 bytes: of the version, the length and the payload, as written
                           (formats 1 and 2: of the payload only)
    payload                the parts below, each a u64 length and its bytes

A file that does not start with the magic bytes, is shorter or longer than its header says, or
whose digest does not match is refused whole: a state is never half read. Since format 3 the
digest covers the version too, and every later format keeps that rule: a version newer than
:data:`FORMAT_VERSION` whose digest matches is refused with a message to upgrade, and one whose
digest does not is damage (a damaged version field is not mistaken for a newer release).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from rfm_fast.errors import RFMError

MAGIC = b"RFMDAILY"
FORMAT_VERSION = 3
"""3: the digest covers the version and the length too (the payload is that of 2; 1 and 2 are
still read). 2: a state may keep rows for a window, and segment rules with a playbook and bounds
in days (1: totals and score rules only)."""
_HEADER = struct.Struct("<8sIQ32s")
_HASHED_HEADER = struct.Struct("<IQ")
"""The version and the length, hashed before the payload (formats 3 and later)."""
_PAYLOAD_ONLY_DIGEST = (1, 2)
"""Formats whose digest is of the payload alone."""


Chunk = bytes | memoryview | pa.Buffer
"""A piece of a part, written as it is."""


def payload_chunks(parts: Sequence[Sequence[Chunk]]) -> list[Chunk]:
    """The payload of ``parts`` (each a sequence of chunks) as chunks to write in turn: each
    part as its u64 length and its chunks."""
    out: list[Chunk] = []
    for part in parts:
        out.append(struct.pack("<Q", sum(len(chunk) for chunk in part)))
        out.extend(part)
    return out


def unpack_parts(payload: memoryview, count: int, path: Path) -> list[memoryview]:
    """The ``count`` parts of a payload :func:`payload_chunks` wrote."""
    parts, at = [], 0
    for _ in range(count):
        if at + 8 > len(payload):
            raise _damaged(path, "its payload ends early")
        (size,) = struct.unpack_from("<Q", payload, at)
        if at + 8 + size > len(payload):
            raise _damaged(path, "its payload ends early")
        parts.append(payload[at + 8 : at + 8 + size])
        at += 8 + size
    if at != len(payload):
        raise _damaged(path, "its payload has bytes after its last part")
    return parts


class StateFileWriter:
    """Writes ``parts`` (:func:`payload_chunks`) in their envelope to a (temporary) file,
    hashing the payload as it goes, without joining it in memory first; see
    :meth:`rfm_fast.DailyState.save`, which renames the file over the state's path once it is on
    disk, so that a crash or ``kill -9`` at any moment leaves the old file or the new one.
    :attr:`digest` is the payload's SHA-256 once a file is written."""

    def __init__(self, parts: Sequence[Sequence[Chunk]]) -> None:
        self.chunks = payload_chunks(parts)
        self.digest: bytes | None = None

    def __call__(self, temporary: Path) -> None:
        length = sum(len(chunk) for chunk in self.chunks)
        digest = hashlib.sha256(_HASHED_HEADER.pack(FORMAT_VERSION, length))
        with open(temporary, "wb") as out:
            out.write(_HEADER.pack(MAGIC, FORMAT_VERSION, length, bytes(32)))
            for chunk in self.chunks:
                digest.update(chunk)
                out.write(chunk)
            out.seek(_HEADER.size - 32)
            out.write(digest.digest())
        self.digest = digest.digest()


def state_file_writer(parts: Sequence[Sequence[Chunk]]) -> StateFileWriter:
    """The function that writes ``parts`` in their envelope to a file (:class:`StateFileWriter`)."""
    return StateFileWriter(parts)


def state_file_digest(path: str | Path) -> bytes | None:
    """The payload digest recorded in the header of the state file at ``path`` (its identity:
    every save of other content changes it), or None when there is no state file there."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(_HEADER.size)
    except OSError:
        return None
    if len(header) < _HEADER.size or header[: len(MAGIC)] != MAGIC:
        return None
    return _HEADER.unpack(header)[3]


def read_state_file(path: str | Path) -> memoryview:
    """The payload of the state file at ``path``, checked whole.

    Raises
    ------
    RFMError
        When the file is missing, is not a state file, was written by a newer format, or is
        truncated or damaged (its checksum does not match).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RFMError(f"state file not found: {path}; build one with rfm state init") from None
    except IsADirectoryError:
        raise RFMError(f"{path} is a folder, not a state file") from None
    except OSError as exc:
        raise RFMError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    if data[: len(MAGIC)] != MAGIC:
        raise RFMError(
            f"{path} is not an rfm_fast state file (it does not start with the RFMDAILY "
            "header); give the file that rfm state init wrote"
        )
    if len(data) < _HEADER.size:
        raise _damaged(path, f"it ends inside its {_HEADER.size}-byte header")
    _, version, length, digest = _HEADER.unpack_from(data)
    payload = memoryview(data)[_HEADER.size :]
    if version in _PAYLOAD_ONLY_DIGEST:
        matches = hashlib.sha256(payload).digest() == digest
    else:
        matches = _digest(version, length, payload) == digest
    if version > FORMAT_VERSION and matches:
        raise RFMError(
            f"{path} was written in state format {version}, by a newer rfm_fast; this release "
            f"reads formats up to {FORMAT_VERSION}: upgrade rfm_fast to read it"
        )
    if version == 0 or version > FORMAT_VERSION:
        raise _damaged(
            path,
            f"its format version field reads {version}, and the checksum does not match it: "
            "the header is damaged, not written by a newer release",
        )
    if len(payload) != length:
        raise _damaged(path, f"it holds {len(payload):,} bytes after its header, not {length:,}")
    if not matches:
        raise _damaged(path, "its checksum does not match its content")
    return payload


def _digest(version: int, length: int, payload: memoryview) -> bytes:
    """The SHA-256 of a state file of format 3 or later: its version, length and payload."""
    digest = hashlib.sha256(_HASHED_HEADER.pack(version, length))
    digest.update(payload)
    return digest.digest()


def _damaged(path: Path, why: str) -> RFMError:
    return RFMError(
        f"state file {path} is damaged or truncated ({why}); it was not read. Restore it from a "
        "backup, or build it again with rfm state init"
    )
