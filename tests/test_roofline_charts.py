"""Unit tests of the roofline chart's spec (lib.roofline_charts), built from real `lib.roofline` frames."""

from __future__ import annotations

import pytest

from lib import roofline
from lib.charts import COLOR_SCHEME, PRESENTER
from lib.roofline_charts import ROOFLINE_TITLE, roofline_chart


def chart_spec(style=None) -> dict:
    labelled = [
        ("cpu:0 · run 1", "cpu:0", "float32 strict", roofline.roofline_point(5e9, 4.7, 2e11, 2.5e10)),
        ("gpu:0 · run 2", "gpu:0", "tf32", roofline.roofline_point(2.4e14, 209.0, 4e14, 3e12)),
    ]
    points = roofline.points_frame(labelled)
    chart = roofline_chart(points, roofline.roofs_frame(points), *([style] if style else []))
    return chart.to_dict()


def test_both_axes_are_log_scales_with_units_in_their_titles():
    for layer in chart_spec()["layer"]:
        x, y = layer["encoding"]["x"], layer["encoding"]["y"]
        assert x["scale"]["type"] == y["scale"]["type"] == "log"
        assert "FLOP per byte" in x["title"]
        assert "FLOP/s" in y["title"]


def test_ticks_are_powers_of_ten_over_a_wide_span():
    roofs, _ = chart_spec()["layer"]
    ticks = roofs["encoding"]["y"]["axis"]["values"]
    assert ticks[0] == pytest.approx(1e9)
    assert all(later / earlier == pytest.approx(10) for earlier, later in zip(ticks, ticks[1:], strict=False))


def test_roof_layer_draws_one_line_per_device_and_precision():
    spec = chart_spec()
    roofs, _ = spec["layer"]
    assert roofs["mark"]["type"] == "line"
    assert roofs["encoding"]["strokeDash"]["field"] == "roof"
    rows = spec["datasets"][roofs["data"]["name"]]
    assert {row["roof"] for row in rows} == {"cpu:0 · float32 strict", "gpu:0 · tf32"}
    assert max(row["flops_per_s"] for row in rows if row["device"] == "cpu:0") == pytest.approx(2e11)


def test_runs_are_points_coloured_by_their_bound_with_every_number_in_the_tooltip():
    spec = chart_spec()
    _, points = spec["layer"]
    assert points["mark"]["type"] == "point"
    color = points["encoding"]["color"]
    assert color["field"] == "bound"
    assert color["scale"] == {"domain": list(roofline.BOUNDS), "scheme": COLOR_SCHEME}
    tooltip_fields = {tip["field"] for tip in points["encoding"]["tooltip"]}
    assert set(roofline.POINT_COLUMNS) <= tooltip_fields
    rows = spec["datasets"][points["data"]["name"]]
    assert [row["bound"] for row in rows] == ["overhead-bound", "compute-bound"]


def test_title_and_presenter_style():
    spec = chart_spec(PRESENTER)
    assert spec["title"]["text"] == ROOFLINE_TITLE
    assert spec["config"]["axis"]["labelFontSize"] == PRESENTER.text_px
    assert all(layer["encoding"]["tooltip"] for layer in spec["layer"])
