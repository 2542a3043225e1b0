"""How the operator commands print: aligned tables (rich) for people, JSON for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

# Colour per outcome; rich leaves colour out when stdout is no terminal, or NO_COLOR is set.
STYLES = {
    "accept": "green",
    "reject": "bold red",
    "ack": "green",
    "nak": "red",
    "timeout": "yellow",
    "error": "red",
    "active": "green",
    "suspended": "yellow",
    "inactive": "dim",
    "cancelled": "dim",
}


class Out:
    """Prints tables and lines; into a pipe without colour, folding or trailing blanks."""

    def __init__(self) -> None:
        self.terminal = sys.stdout.isatty()
        if self.terminal:
            self._console = Console()
        else:
            # Piped into grep, less or a file: no row is folded to fit 80 columns (a table is
            # as wide as its content), unless COLUMNS asks for a width.
            columns = os.environ.get("COLUMNS", "")
            self._console = Console(width=int(columns) if columns.isdigit() else 10_000)

    def print(self, *things: Any, style: str | None = None) -> None:
        if self.terminal:
            self._console.print(*things, style=style)
            return
        with self._console.capture() as captured:
            self._console.print(*things)
        # rich pads every cell to its column's width, the last one too.
        lines = [line.rstrip() for line in captured.get().splitlines()]
        print("\n".join(lines), flush=True)


def console() -> Out:
    return Out()


def table(*columns: str, title: str | None = None) -> Table:
    """A table with a header line and no borders, like radwho's or `ip` output."""
    grid = Table(
        box=box.SIMPLE_HEAD, title=title, title_justify="left", show_edge=False, pad_edge=False
    )
    for column in columns:
        right = column in ("bytes up", "bytes down", "count", "id", "session")
        grid.add_column(column, justify="right" if right else "left", overflow="fold")
    return grid


def styled(value: str | None) -> Text:
    text = value or ""
    return Text(text, style=STYLES.get(text, ""))


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def print_json_line(value: Any) -> None:
    """JSON Lines: one object per line, for --follow."""
    print(json.dumps(value, ensure_ascii=False), flush=True)


def when(value: str | None) -> str:
    """An API timestamp (UTC) as this host's local time, to the second."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(since: str | None, until: str | None = None) -> str:
    """Time between two API timestamps (until: now), e.g. 3d 04:05:06."""
    if not since:
        return ""
    start = datetime.fromisoformat(since)
    end = datetime.fromisoformat(until) if until else datetime.now(UTC)
    seconds = max(0, int((end - start).total_seconds()))
    days, rest = divmod(seconds, 86_400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def size(octets: int | None) -> str:
    return decimal(octets) if octets is not None else ""


def joined(values: Iterable[str | None], limit: int = 3) -> str:
    """Names for one cell: the first few and how many more."""
    present = [value for value in values if value]
    shown = ", ".join(present[:limit])
    return f"{shown} (+{len(present) - limit})" if len(present) > limit else shown


def footer(shown: int, total: int, noun: str, hint: str = "--limit") -> str | None:
    """`12 of 340 sessions` when a page holds fewer rows than match."""
    if total <= shown:
        return None
    return f"{shown} of {total} {noun}; {hint} for more"


def key_values(rows: Sequence[tuple[str, Any]], title: str | None = None) -> Table:
    """A two-column table of a record's fields."""
    grid = Table(box=None, show_header=False, title=title, title_justify="left", pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(
            name, value if isinstance(value, Text) else Text("" if value is None else str(value))
        )
    return grid
