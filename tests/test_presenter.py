"""AppTest of the presenter view (issue 15, point 3): one switch in the sidebar, kept in the session and the link,
that draws every page's charts in `lib.charts.PRESENTER` and the Results page's charts one per row."""

from __future__ import annotations

import dataclasses
import json

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from lib.charts import PRESENTER
from lib.device_run import DeviceRun
from lib.links import PRESENTER_PARAM
from lib.parallel import ALL_GPUS
from lib.presets import PRESETS
from lib.store import RunStore
from tests.conftest import REPO_ROOT
from tests.helpers.runs import device_run
from ui.keys import Key
from ui.presenter import PRESENTER_FONT_PX

APP = str(REPO_ROOT / "streamlit_app.py")
RESULTS = "app_pages/results.py"
CONFUSION = [[10 if true == predicted else 0 for predicted in range(10)] for true in range(10)]
# Six comparison charts, the confusion matrix and the two scaling charts (no ceiling measured: no hardware chart).
RESULTS_CHARTS = 9


def learned_run(device: str, epoch_s: list[float]) -> DeviceRun:
    """A finished run on real data, with a confusion matrix, so Results draws "What the model learned"."""
    return device_run(device, epoch_s, num_test=100, confusion=CONFUSION)


@pytest.fixture
def seeded_store(runs_db) -> RunStore:
    """A CPU vs GPU job, and a one-GPU and a data-parallel run of another model (the scaling charts)."""
    store = RunStore()
    tuned, seed = PRESETS["fashion-tuned"].spec, PRESETS["fashion-seed"].spec
    store.record(tuned, learned_run("gpu:0", [3.0, 1.0, 1.0]), preset="fashion-tuned", job_id="job-gpus")
    parallel = dataclasses.replace(learned_run(ALL_GPUS, [2.0, 0.6, 0.6]), replicas=2)
    store.record(tuned, parallel, preset="fashion-tuned", job_id="job-gpus")
    store.record(seed, learned_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-race")
    store.record(seed, learned_run("gpu:0", [3.0, 1.0, 1.0]), preset="fashion-seed", job_id="job-race")
    return store


def open_page(page: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.switch_page(page).run()
    assert not at.exception
    return at


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def presenter_css(at: AppTest) -> list[str]:
    """The presenter view's style elements on the page (they take no space: Streamlit's event container)."""
    return [html.proto.body for html in at.get("html") if f"font-size: {PRESENTER_FONT_PX}px" in html.proto.body]


def chart_places(at: AppTest) -> list[tuple[Block, list[str]]]:
    """For each chart, the block that holds it and the types of every block above that one."""
    charts = at.get("vega_lite_chart")
    places: list[tuple[Block, list[str]]] = []

    def walk(block: Block, above: list[str]) -> None:
        for child in block.children.values():
            if any(child is chart for chart in charts):
                places.append((block, above))
            elif isinstance(child, Block):
                walk(child, [*above, child.type])

    walk(at.main, [])
    assert len(places) == len(charts)
    return places


def test_the_switch_starts_off_and_charts_keep_streamlits_own_style(seeded_store):
    at = open_page(RESULTS)
    assert at.toggle(key=Key.PRESENTER).value is False
    specs = chart_specs(at)
    assert len(specs) == RESULTS_CHARTS
    assert all(set(spec.get("config", {})) <= {"view"} for spec in specs)  # Altair's default, no presenter text
    assert presenter_css(at) == []
    assert PRESENTER_PARAM not in at.query_params


def test_a_presenter_link_draws_results_one_larger_chart_per_row(seeded_store):
    at = open_page(RESULTS, {PRESENTER_PARAM: "1"})
    assert at.toggle(key=Key.PRESENTER).value is True
    specs = chart_specs(at)
    assert len(specs) == RESULTS_CHARTS
    for spec in specs:
        assert spec["config"]["axis"]["labelFontSize"] == PRESENTER.text_px
        assert spec["config"]["title"]["fontSize"] == PRESENTER.title_px
    # One chart per row: each in a box of its own, none beside another in columns.
    places = chart_places(at)
    assert all(len([place for place in places if place[0] is block]) == 1 for block, _ in places)
    assert all("column" not in above for _, above in places)
    assert len(presenter_css(at)) == 1
    assert at.query_params[PRESENTER_PARAM] == "1"


def test_the_switch_turns_the_view_on_and_off_and_the_link_follows_it(runs_db):
    at = open_page("app_pages/home.py")
    at.toggle(key=Key.PRESENTER).set_value(True).run()
    assert len(presenter_css(at)) == 1
    assert at.query_params[PRESENTER_PARAM] == "1"
    # The Build page writes the whole link for its model; the switch stays in it.
    at.switch_page("app_pages/build.py").run()
    assert not at.exception
    assert at.toggle(key=Key.PRESENTER).value is True
    assert at.query_params[PRESENTER_PARAM] == "1" and "layers" in at.query_params
    at.toggle(key=Key.PRESENTER).set_value(False).run()
    assert presenter_css(at) == []
    assert PRESENTER_PARAM not in at.query_params and "layers" in at.query_params


def test_a_presenter_value_it_cannot_use_is_quoted_under_the_switch_until_it_is_used(runs_db):
    at = open_page("app_pages/build.py", {PRESENTER_PARAM: "**yes**"})
    assert at.toggle(key=Key.PRESENTER).value is False
    notes = [caption.value for caption in at.sidebar.caption if "presenter" in caption.value]
    assert len(notes) == 1 and "`presenter=**yes**`" in notes[0]
    assert not at.warning  # not a model setting: the Build page's link notices say nothing of it
    at.run()
    assert any("presenter=" in caption.value for caption in at.sidebar.caption)  # kept through reruns
    at.toggle(key=Key.PRESENTER).set_value(True).run()
    assert not any("presenter=" in caption.value for caption in at.sidebar.caption)
    assert at.query_params[PRESENTER_PARAM] == "1"
