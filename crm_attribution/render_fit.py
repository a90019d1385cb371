"""Terminal tables that never cut a digit.

A :class:`Sheet` is a titled grid of already formatted cells. Drawn on a console it measures
the room it is given: when every column fits it is one table; when not, its value columns
fold into several tables that each repeat the key columns; when not even one value column
fits beside the keys, every row is printed as a block of ``label: value`` lines. A value cell
is never wrapped, shortened or given an ellipsis; only headers and key cells wrap, at spaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

# A rich table with a border and one space of padding each side of a cell: every column costs
# its own width plus 3 (two spaces and its left border), and the table one more (right border).
COLUMN_COST = 3
EDGE_COST = 1


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


@dataclass
class Sheet:
    """A titled grid of formatted cells; the first ``keys`` columns label each row."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    keys: int = 1
    notes: list[str] = field(default_factory=list)

    def add_row(self, *cells: str) -> None:
        """Append a row (as many cells as columns)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    def key_width(self, i: int) -> int:
        """Narrowest width of key column ``i``: its longest word (keys wrap at spaces)."""
        return max(_longest_word(self.columns[i]), *(_longest_word(row[i]) for row in self.rows), 1)

    def value_width(self, i: int) -> int:
        """Narrowest width of value column ``i``: its longest cell, whole."""
        return max(_longest_word(self.columns[i]), *(len(row[i]) for row in self.rows), 1)

    def column_groups(self, width: int) -> list[list[int]] | None:
        """Value columns split into groups that fit ``width`` beside the keys (None: none fit)."""
        used = EDGE_COST + sum(self.key_width(i) + COLUMN_COST for i in range(self.keys))
        groups: list[list[int]] = []
        current: list[int] = []
        room = width - used
        for i in range(self.keys, len(self.columns)):
            need = self.value_width(i) + COLUMN_COST
            if need > width - used:
                return None
            if need > room:
                groups.append(current)
                current, room = [], width - used
            current.append(i)
            room -= need
        if current or not groups:
            groups.append(current)
        return groups

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Draw as one table, folded tables, or vertical blocks, whichever fits."""
        groups = self.column_groups(options.max_width)
        if groups is None:
            yield from self._vertical(options.max_width)
        else:
            for n, group in enumerate(groups):
                title = self.title if len(groups) == 1 else f"{self.title} ({n + 1}/{len(groups)})"
                yield self._table(title, group, options.max_width)
        for note in self.notes:
            yield Text(note, style="dim")

    def key_widths(self, values: list[int], width: int) -> list[int]:
        """Key column widths: as wide as their cells where the room allows, else their minimum."""
        value_cost = sum(self.value_width(i) + COLUMN_COST for i in values)
        widths = [self.key_width(i) for i in range(self.keys)]
        spare = width - EDGE_COST - value_cost - sum(w + COLUMN_COST for w in widths)
        for i in range(self.keys):
            natural = max(len(self.columns[i]), *(len(row[i]) for row in self.rows), 1)
            grow = min(spare, natural - widths[i])
            if grow > 0:
                widths[i] += grow
                spare -= grow
        return widths

    def _table(self, title: str, values: list[int], width: int) -> Table:
        # Fixed widths everywhere: rich never shrinks a fixed column, and the sum fits `width`.
        table = Table(title=title, title_justify="left", box=box.HEAVY_HEAD)
        for i, key_width in enumerate(self.key_widths(values, width)):
            table.add_column(self.columns[i], width=key_width, overflow="fold")
        for i in values:
            table.add_column(self.columns[i], justify="right", width=self.value_width(i))
        for row in self.rows:
            table.add_row(*(row[i] for i in range(self.keys)), *(row[i] for i in values))
        if not self.rows:
            table.add_row(*(["-"] * (self.keys + len(values))))
        return table

    def _vertical(self, width: int) -> Iterable[Text]:
        yield Text(self.title, style="italic")
        for row in self.rows or [["-"] * len(self.columns)]:
            label = " / ".join(row[i] for i in range(self.keys))
            yield Text(label, style="bold")
            for i in range(self.keys, len(self.columns)):
                line = f"  {self.columns[i]}: {row[i]}"
                if len(line) <= width:
                    yield Text(line)
                else:
                    yield Text(f"  {self.columns[i]}:")
                    yield Text(f"    {row[i]}")
        yield Text("")


def num(value: object, digits: int = 2) -> str:
    """A number with thousands separators ("-" when undefined); integers stay integers."""
    if value is None or isinstance(value, bool):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and digits == 0:
            return f"{int(value):,}"
        return f"{value:,.{digits}f}"
    return str(value)


def pct(value: object, digits: int = 1) -> str:
    """A fraction as a percentage ("-" when undefined)."""
    if value is None or not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:.{digits}%}"


def points(value: object, digits: int = 1) -> str:
    """A difference of two rates in percentage points ("-" when undefined)."""
    if value is None or not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value * 100:+.{digits}f} pts"


def output_console() -> Console:
    """The console for a command's tables: the terminal's width, or COLUMNS, or 80 in a pipe."""
    return Console()
