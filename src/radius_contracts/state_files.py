"""The state directory is private: 0700, and every file in it 0600, however the daemon starts.

The SQLite database holds NAS secrets and subscribers' passwords in clear text (CHAP and
MS-CHAPv2 need them), the spool holds accounting, admin-token an admin API token. systemd's
``UMask=0077`` covers only a service install; ``./scripts/serve.sh`` or a hand-run ``serve`` ran
with the login shell's 0022 and left them world-readable. So the process sets its own umask
before it creates anything, and tightens what an earlier start left behind.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("radius_contracts.daemon")

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_paths(state_dir: Path, database: Path | None) -> Iterator[Path]:
    """The state directory, everything under it, and the SQLite files if they live elsewhere."""
    if state_dir.is_dir():
        yield state_dir
        for root, dirs, files in os.walk(state_dir):
            for name in (*dirs, *files):
                yield Path(root) / name
    if database is not None:
        for suffix in SQLITE_SUFFIXES:
            path = database.with_name(database.name + suffix)
            if path.exists() and not path.is_relative_to(state_dir):
                yield path


def make_private(state_dir: Path, database: Path | None = None) -> None:
    """Umask 0077 for all this process creates; the state directory made (or turned) 0700
    and the files already in it 0600."""
    os.umask(PRIVATE_UMASK)
    state_dir.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    for path in private_paths(state_dir, database):
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode) or not info.st_mode & _OPEN_TO_OTHERS:
                continue
            wanted = DIRECTORY_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
            os.chmod(path, stat.S_IMODE(info.st_mode) & wanted)
            log.warning("%s was %s; made it %s", path, _mode(info.st_mode),
                        _mode(info.st_mode & wanted))  # fmt: skip
        except OSError as exc:  # e.g. owned by someone else: say so, do not stop
            log.warning("could not make %s private: %s", path, exc)


def loose_modes(state_dir: Path, database: Path | None = None) -> list[str]:
    """What ``check-config`` warns about: paths that others (group or world) may use."""
    found = []
    for path in private_paths(state_dir, database):
        with_others = path.lstat().st_mode
        if not stat.S_ISLNK(with_others) and with_others & _OPEN_TO_OTHERS:
            found.append(f"{path} is {_mode(with_others)} (group or others have access)")
    return found


def _mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"
