"""The accounting spool: where Accounting-Requests go while the database cannot take them.

RFC 2866 §2 lets a server answer an Accounting-Request only once it has recorded it. While
the database is down the writer records to this spool instead: an append-only file on local
disk, fsync'd before the requests are answered, replayed into the database in arrival order
once it is back. Replaying a record twice is harmless (store.accounting applies records
idempotently: counters only grow, a closed session recognises its repeats), so a crash
between a replayed chunk's commit and the note of it only costs a repeat, never a loss.

Layout: numbered segment files of JSON lines, one record per line. The segment being
appended to is the tail; the replay reads from the oldest segment and seals the tail when
it gets there, so appends and reads never share a file. ``NNN.done`` beside a segment holds
how many of its bytes are in the database. A line without its newline is a write that was
cut off (the process died before its fsync returned, so nobody was told it was recorded):
it is skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from radius_contracts.store.accounting import AcctRecord

log = logging.getLogger("radius_contracts.aaa.spool")

SEGMENT_BYTES = 8 << 20  # a sealed segment is deleted once replayed: keep them small
_SUFFIX = ".jsonl"
_FIELDS = tuple(f.name for f in dataclasses.fields(AcctRecord))


class SpoolFull(Exception):
    """The spool reached its size limit: the records stay unanswered (the NAS retransmits)."""


@dataclass(slots=True)
class Chunk:
    """Records read from one segment, and where they end in it."""

    segment: Path
    end: int
    records: list[AcctRecord]
    lines: int  # complete lines consumed (an unreadable one counts, though it yields nothing)


def _encode(record: AcctRecord) -> bytes:
    values: dict[str, Any] = {name: getattr(record, name) for name in _FIELDS}
    values["at"] = record.at.isoformat()
    return json.dumps(values, separators=(",", ":")).encode() + b"\n"


def _decode(line: bytes) -> AcctRecord:
    values = json.loads(line)
    values["at"] = datetime.fromisoformat(values["at"])
    # Fields a later version added are left at their defaults; unknown ones are ignored.
    return AcctRecord(**{name: values[name] for name in _FIELDS if name in values})


def _fsync_directory(path: Path) -> None:
    # A new file's name is durable only once its directory is synced.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _complete_lines(data: bytes) -> int:
    return data.count(b"\n")


class AccountingSpool:
    """Durable FIFO of accounting records in ``directory``; at most ``max_bytes`` on disk."""

    def __init__(self, directory: Path, *, max_bytes: int = 1 << 30) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._segments: list[Path] = []  # oldest first; the last may be the tail
        self._tail: Any = None  # the open file being appended to (a binary file object)
        self._read_offset = 0  # bytes of the oldest segment already in the database
        self._bytes = 0  # on disk, not yet replayed (roughly: what max_bytes limits)
        self.pending = 0  # records spooled and not yet replayed
        self._lock = asyncio.Lock()  # appends and seals, one at a time

    # -- opening ---------------------------------------------------------------------------

    def open(self) -> int:
        """Find what an earlier run left (blocking; call before the event loop is busy)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._segments = sorted(self.directory.glob(f"*{_SUFFIX}"))
        self.pending = self._bytes = 0
        self._read_offset = self._done_offset(self._segments[0]) if self._segments else 0
        for number, segment in enumerate(self._segments):
            data = segment.read_bytes()
            start = self._read_offset if number == 0 else 0
            self.pending += _complete_lines(data[start:])
            self._bytes += len(data) - start
        if self.pending:
            log.warning(
                "%d accounting records in the spool %s from an earlier run; they will be "
                "written to the database",
                self.pending,
                self.directory,
            )
        return self.pending

    @staticmethod
    def _done_path(segment: Path) -> Path:
        return segment.with_suffix(".done")

    def _done_offset(self, segment: Path) -> int:
        try:
            return int(self._done_path(segment).read_text())
        except (OSError, ValueError):
            return 0

    # -- appending -------------------------------------------------------------------------

    async def append(self, records: list[AcctRecord]) -> None:
        """Write ``records`` and fsync them; only then may they be acknowledged."""
        data = b"".join(_encode(record) for record in records)
        async with self._lock:
            if self._bytes + len(data) > self.max_bytes:
                raise SpoolFull(f"the accounting spool holds {self._bytes} bytes already")
            await asyncio.to_thread(self._write, data)
            self._bytes += len(data)
            self.pending += len(records)

    def _write(self, data: bytes) -> None:
        if self._tail is None:
            number = int(self._segments[-1].stem) + 1 if self._segments else 1
            path = self.directory / f"{number:012d}{_SUFFIX}"
            self._tail = open(path, "ab")  # noqa: SIM115 (kept open across appends)
            self._segments.append(path)
            _fsync_directory(self.directory)
        tail = self._tail
        tail.write(data)
        tail.flush()
        os.fsync(tail.fileno())
        if tail.tell() >= SEGMENT_BYTES:
            tail.close()
            self._tail = None

    # -- replaying -------------------------------------------------------------------------

    async def read(self, limit: int) -> Chunk | None:
        """The oldest ``limit`` records not yet replayed (None when there are none)."""
        async with self._lock:
            if not self._segments:
                return None
            if len(self._segments) == 1 and self._tail is not None:
                # Replay has caught up with the appends: seal the tail, start a new one.
                self._tail.close()
                self._tail = None
        return await asyncio.to_thread(self._read, self._segments[0], self._read_offset, limit)

    @staticmethod
    def _read(segment: Path, offset: int, limit: int) -> Chunk:
        records: list[AcctRecord] = []
        lines = 0
        with open(segment, "rb") as fh:
            fh.seek(offset)
            end = offset
            for line in fh:
                end += len(line)
                if not line.endswith(b"\n"):
                    # Cut off before its fsync returned, so never acknowledged. Only sealed
                    # segments are read, so nothing will complete it.
                    log.warning("skipping a cut-off line at the end of %s", segment)
                    break
                lines += 1
                try:
                    records.append(_decode(line))
                except (ValueError, TypeError, KeyError) as exc:
                    log.error("skipping an unreadable line in %s before byte %d: %s",
                              segment, end, exc)  # fmt: skip
                if lines >= limit:
                    break
        return Chunk(segment, end, records, lines)

    async def done(self, chunk: Chunk) -> None:
        """``chunk`` is in the database: move past it, delete segments fully replayed."""
        async with self._lock:
            self.pending = max(0, self.pending - chunk.lines)
            self._bytes = max(0, self._bytes - (chunk.end - self._read_offset))
            self._read_offset = chunk.end
            await asyncio.to_thread(self._advance, chunk)

    def _advance(self, chunk: Chunk) -> None:
        segment = chunk.segment
        if chunk.end >= segment.stat().st_size:
            # Sealed and replayed to its end (read() only reads the tail after sealing it).
            segment.unlink()
            self._done_path(segment).unlink(missing_ok=True)
            self._segments.remove(segment)
            self._read_offset = self._done_offset(self._segments[0]) if self._segments else 0
            return
        # No fsync: losing this note only replays records again, which changes nothing.
        note = self._done_path(segment)
        temporary = note.with_suffix(".tmp")
        temporary.write_text(str(chunk.end))
        os.replace(temporary, note)

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None
