"""intake.charts: numbers into shapes (the overview's SVG)."""

from __future__ import annotations

import pytest

from intake.charts import HEIGHT, TOP, horizontal, nice_top, stacked


@pytest.mark.parametrize(
    ("largest", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (51, 100)]
)
def test_the_axis_ends_at_a_round_number(largest, top):
    assert nice_top(largest) == top


def test_a_stacked_bar_is_its_parts_from_the_axis_up():
    chart = stacked(
        id="c",
        title="t",
        caption="c",
        series=[("a", "A"), ("b", "B")],
        rows=[("d1", {"a": 2, "b": 3}), ("d2", {}), ("d3", {"b": 5})],
    )
    first = [bar for bar in chart.bars if bar.title.startswith("d1")]
    assert [bar.title for bar in first] == ["d1: A 2", "d1: B 3"]
    # The axis tops at 5: the first day's two parts fill the plot exactly.
    assert first[0].y + first[0].height == TOP + HEIGHT
    assert first[1].y == pytest.approx(TOP)
    assert sum(bar.height for bar in first) == pytest.approx(HEIGHT)
    assert chart.table == [("d1", [2, 3], 5), ("d2", [0, 0], 0), ("d3", [0, 5], 5)]
    assert (chart.series_totals, chart.total) == ([2, 8], 10)
    assert [tick.label for tick in chart.y_ticks] == ["0", "2", "5"]


def test_an_empty_chart_draws_no_bars():
    chart = stacked(id="c", title="t", caption="c", series=[("a", "A")], rows=[])
    assert (chart.bars, chart.total) == ([], 0)


def test_horizontal_bars_are_as_long_as_their_counts():
    chart = horizontal(
        id="u", title="t", caption="c", label="n", rows=[("ann", 10), ("bo", 5)]
    )
    ann, bo = chart.bars
    assert ann.width == pytest.approx(2 * bo.width)
    assert [tick.label for tick in chart.x_ticks] == ["ann", "bo"]
