"""Charts drawn on the server: the numbers become SVG shapes, no script.

A chart is a list of rows (a day, or a user) with a count per series; this
module turns it into rectangles and axis ticks for the template
(templates/intake/partials/bar_chart.html), which draws them as inline SVG
with presentation attributes only (the CSP allows no inline style). The
same rows fill the table printed beside each chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Width and height of the plot area, in SVG user units.
WIDTH = 720
HEIGHT = 220
#: Room for the axis labels.
LEFT = 44
BOTTOM = 28
TOP = 12
#: Colours, by series position (static/css/app.css: .series-0 ...).
SERIES_STYLES = 8


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    css: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    #: What a pointer or a screen reader gets on hovering the rectangle.
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass
class Chart:
    """One stacked bar chart and the table of its numbers."""

    #: The element id the page gives it (and its title and caption).
    id: str
    title: str
    caption: str
    series: list[Series]
    #: (row label, {series key: count}) in display order.
    rows: list[tuple[str, dict[str, int]]]
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    width: int = WIDTH + LEFT
    height: int = TOP + HEIGHT + BOTTOM

    @property
    def total(self) -> int:
        return sum(sum(counts.values()) for _, counts in self.rows)

    @property
    def table(self) -> list[tuple[str, list[int], int]]:
        """Each row's counts in series order, and the row's total."""
        return [
            (
                label,
                [counts.get(s.key, 0) for s in self.series],
                sum(counts.values()),
            )
            for label, counts in self.rows
        ]

    @property
    def series_totals(self) -> list[int]:
        return [
            sum(counts.get(s.key, 0) for _, counts in self.rows) for s in self.series
        ]


def nice_top(largest: int) -> int:
    """A round axis maximum at or above `largest` (1, 2, 5 x 10^n)."""
    if largest <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(largest))
    for step in (1, 2, 5, 10):
        if step * magnitude >= largest:
            return step * magnitude
    return 10 * magnitude


def stacked(
    *,
    id: str,
    title: str,
    caption: str,
    series: list[tuple[str, str]],
    rows: list[tuple[str, dict[str, int]]],
    label_every: int = 1,
) -> Chart:
    """A vertical stacked bar per row; `series` are (key, label) pairs."""
    chart = Chart(
        id=id,
        title=title,
        caption=caption,
        series=[
            Series(key, label, f"series-{i % SERIES_STYLES}")
            for i, (key, label) in enumerate(series)
        ],
        rows=rows,
    )
    top = nice_top(max((sum(c.values()) for _, c in rows), default=0))
    slot = WIDTH / max(len(rows), 1)
    gap = min(2.0, slot * 0.2)
    for index, (label, counts) in enumerate(rows):
        base = float(TOP + HEIGHT)
        for item in chart.series:
            count = counts.get(item.key, 0)
            if not count:
                continue
            height = HEIGHT * count / top
            base -= height
            chart.bars.append(
                Bar(
                    x=round(LEFT + index * slot + gap / 2, 2),
                    y=round(base, 2),
                    width=round(slot - gap, 2),
                    height=round(height, 2),
                    css=item.css,
                    title=f"{label}: {item.label} {count}",
                )
            )
        if index % label_every == 0:
            chart.x_ticks.append(Tick(round(LEFT + (index + 0.5) * slot, 2), label))
    chart.y_ticks = [
        Tick(round(TOP + HEIGHT - HEIGHT * value / top, 2), str(value))
        for value in sorted({0, top // 2, top})
    ]
    return chart


#: Horizontal bars: the height of one row, and room for its label.
ROW_HEIGHT = 22
LABEL_WIDTH = 160


def horizontal(
    *, id: str, title: str, caption: str, label: str, rows: list[tuple[str, int]]
) -> Chart:
    """One horizontal bar per row (a user, say), its count at its end."""
    chart = Chart(
        id=id,
        title=title,
        caption=caption,
        series=[Series("n", label, "series-0")],
        rows=[(name, {"n": count}) for name, count in rows],
        width=LABEL_WIDTH + WIDTH + 40,
        height=max(len(rows), 1) * ROW_HEIGHT + 8,
    )
    top = nice_top(max((count for _, count in rows), default=0))
    for index, (name, count) in enumerate(rows):
        y = 4 + index * ROW_HEIGHT
        chart.bars.append(
            Bar(
                x=LABEL_WIDTH,
                y=y,
                width=round(WIDTH * count / top, 2),
                height=ROW_HEIGHT - 6,
                css="series-0",
                title=f"{name}: {count}",
            )
        )
        chart.x_ticks.append(Tick(y + ROW_HEIGHT / 2, name))
    return chart
