"""AppTest of the Build page: presets, live numbers, per-layer units, limits, estimates and shareable links."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from lib.backend import backend_name
from lib.device_run import DeviceRun
from lib.presets import PRESETS, TUTORIAL_LINK
from lib.spec import DEFAULT_LEARNING_RATES, ModelSpec, count_params
from lib.store import RunStore
from tests.conftest import REPO_ROOT
from ui.keys import Key, layer_units_key

APP = str(REPO_ROOT / "streamlit_app.py")


def open_build(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.switch_page("app_pages/build.py").run()
    assert not at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def code(at: AppTest) -> str:
    return at.code[0].value


def estimates(at: AppTest):
    return next(frame.value for frame in at.dataframe if "Time per epoch" in frame.value.columns)


def test_opens_on_the_fashion_mnist_tutorial_model(runs_db):
    at = open_build()
    spec = at.session_state[Key.MODEL_SPEC]
    assert spec == PRESETS["fashion-seed"].spec
    assert metric(at, "Parameters") == f"{count_params(spec):,}"
    assert at.slider(key=Key.HIDDEN_LAYERS).value == 5
    assert at.select_slider(key=Key.UNITS).value == 500
    assert at.pills(key=Key.PRESET).value == "fashion-seed"
    assert "Fashion-MNIST, as in the tutorial" in at.caption[1].value
    assert at.query_params["preset"] == "fashion-seed"
    assert at.query_params["layers"] == "5" and at.query_params["units"] == "500"


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_loads_with_one_click(runs_db, name):
    at = open_build()
    at.pills(key=Key.PRESET).set_value(name).run()
    assert not at.exception
    preset = PRESETS[name].spec
    assert at.session_state[Key.MODEL_SPEC] == preset
    assert at.pills(key=Key.PRESET).value == name
    assert at.slider(key=Key.HIDDEN_LAYERS).value == len(preset.hidden_units)
    assert at.selectbox(key=Key.OPTIMIZER).value == preset.optimizer
    assert at.number_input(key=Key.LEARNING_RATE).value == pytest.approx(preset.learning_rate)
    assert at.select_slider(key=Key.BATCH_SIZE).value == preset.batch_size
    assert at.slider(key=Key.BUILD_EPOCHS).value == preset.epochs
    assert at.toggle(key=Key.JIT_COMPILE).value == preset.jit_compile
    assert metric(at, "Parameters") == f"{count_params(preset):,}"
    assert f"keras.layers.Dense({preset.hidden_units[0]}," in code(at)


def test_a_preset_click_wins_over_stale_widget_values_sent_with_it(runs_db):
    at = open_build()
    at.pills(key=Key.PRESET).set_value("cifar10-seed").run()
    # The browser sends the click together with other widgets' values; here a layer count from before.
    at.slider(key=Key.HIDDEN_LAYERS).set_value(3)
    at.pills(key=Key.PRESET).set_value("fashion-seed").run()
    assert not at.exception
    assert at.session_state[Key.MODEL_SPEC] == PRESETS["fashion-seed"].spec
    assert metric(at, "Parameters") == f"{count_params(PRESETS['fashion-seed'].spec):,}"
    at.slider(key=Key.HIDDEN_LAYERS).set_value(2).run()  # the next change is applied again
    assert at.session_state[Key.MODEL_SPEC].hidden_units == (500, 500)


def test_cifar10_preset_shows_one_input_per_layer(runs_db):
    at = open_build()
    at.pills(key=Key.PRESET).set_value("cifar10-seed").run()
    assert at.toggle(key=Key.PER_LAYER_UNITS).value is True
    assert at.number_input(key=layer_units_key(0)).value == 3000
    assert at.number_input(key=layer_units_key(1)).value == 1000


def test_live_numbers_follow_the_sliders(runs_db):
    at = open_build()
    before = metric(at, "Parameters"), metric(at, "Training FLOPs per sample"), metric(at, "Memory per training step")
    at.slider(key=Key.HIDDEN_LAYERS).set_value(2).run()
    at.select_slider(key=Key.UNITS).set_value(64).run()
    assert not at.exception
    spec = at.session_state[Key.MODEL_SPEC]
    assert spec.hidden_units == (64, 64)
    assert at.pills(key=Key.PRESET).value is None  # the model is no preset any more
    assert metric(at, "Parameters") == f"{count_params(spec):,}" == f"{784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10:,}"
    after = metric(at, "Parameters"), metric(at, "Training FLOPs per sample"), metric(at, "Memory per training step")
    assert all(a != b for a, b in zip(before, after, strict=True))
    assert 'name="hidden_2"' in code(at) and 'name="hidden_3"' not in code(at)
    layers = next(frame.value for frame in at.dataframe if "Layer" in frame.value.columns)
    assert list(layers["Layer"]) == ["flatten", "hidden_1", "hidden_2", "output"]
    assert at.query_params["layers"] == "2" and at.query_params["units"] == "64"


def test_per_layer_units_and_dataset_change(runs_db):
    at = open_build()
    at.toggle(key=Key.PER_LAYER_UNITS).set_value(True).run()
    at.number_input(key=layer_units_key(1)).set_value(32).run()
    at.selectbox(key=Key.BUILD_DATASET).set_value("cifar10").run()
    assert not at.exception
    spec = at.session_state[Key.MODEL_SPEC]
    assert spec.hidden_units == (500, 32, 500, 500, 500)
    assert spec.dataset == "cifar10"
    assert metric(at, "Parameters") == f"{count_params(spec):,}"
    assert "keras.Input(shape=(32, 32, 3))" in code(at)
    assert at.query_params["units"] == "500,32,500,500,500"


def test_new_optimizer_starts_from_its_usual_learning_rate(runs_db):
    at = open_build()
    at.selectbox(key=Key.OPTIMIZER).set_value("sgd").run()
    assert at.number_input(key=Key.LEARNING_RATE).value == pytest.approx(DEFAULT_LEARNING_RATES["sgd"])
    assert at.session_state[Key.MODEL_SPEC].learning_rate == pytest.approx(DEFAULT_LEARNING_RATES["sgd"])
    assert "keras.optimizers.SGD(learning_rate=0.01)" in code(at)


def test_model_over_the_parameter_limit_shows_a_clear_message(runs_db, monkeypatch):
    monkeypatch.setenv("GPUX_MAX_PARAMS", "100000")
    at = open_build({"layers": "1", "units": "64"})
    assert not at.error
    at.select_slider(key=Key.UNITS).set_value(256).run()
    assert not at.exception
    error = at.error[0].value
    assert "passes a server limit" in error and "parameters: this server's limit is 100,000" in error
    assert "GPUX_" not in error and "hidden_units" not in error  # the pages' words, not internal names
    assert "Server limit: 100,000" in next(m.help for m in at.metric if m.label == "Parameters")


def test_the_tutorial_is_named_and_linked_beside_its_presets(runs_db):
    at = open_build()
    assert any(TUTORIAL_LINK in caption.value for caption in at.caption)


def test_sliders_stop_at_the_server_limits(runs_db, monkeypatch):
    monkeypatch.setenv("GPUX_MAX_HIDDEN_LAYERS", "3")
    monkeypatch.setenv("GPUX_MAX_UNITS", "256")
    at = open_build()
    assert at.slider(key=Key.HIDDEN_LAYERS).max == 3
    assert at.select_slider(key=Key.UNITS).options[-1] == "256"
    assert at.slider(key=Key.HIDDEN_LAYERS).help == "Server limit: 3 hidden layers."
    owner = next(e for e in at.expander if "server's owner" in e.label)
    assert "GPUX_MAX_HIDDEN_LAYERS=3" in owner.markdown[0].value  # where it is set: for the owner, folded away
    # The default preset (5 x 500) does not fit, so it was clamped, with a notice.
    assert at.session_state[Key.MODEL_SPEC].hidden_units == (256, 256, 256)
    assert "the model has 3 hidden layers of 256 units" in at.warning[0].value


def test_shared_link_opens_the_same_model(runs_db):
    at = open_build({"preset": "cifar10-seed", "layers": "3", "units": "128", "act": "tanh", "epochs": "2"})
    spec = at.session_state[Key.MODEL_SPEC]
    assert spec == PRESETS["cifar10-seed"].spec.with_changes(
        hidden_units=(128,) * 3, hidden_activation="tanh", epochs=2
    )
    assert at.selectbox(key=Key.HIDDEN_ACTIVATION).value == "tanh"
    assert not at.warning


def test_invalid_link_values_are_ignored_with_a_notice(runs_db):
    at = open_build({"act": "swish", "colour": "red", "epochs": "60", "units": "abc", "preset": "mnist"})
    assert not at.exception
    spec = at.session_state[Key.MODEL_SPEC]
    assert spec == ModelSpec().with_changes(epochs=50)
    notice = at.warning[0].value
    for fragment in ("`act=swish`", "`colour`", "`units=abc`", "asks for 60 epochs", "`preset=mnist`"):
        assert fragment in notice
    # The notice is shown once, not on every rerun.
    at.slider(key=Key.BUILD_EPOCHS).set_value(3).run()
    assert not at.warning


def test_estimates_start_from_a_first_guess_then_use_stored_runs(runs_db):
    at = open_build()
    table = estimates(at)
    assert list(table["Device"]) == ["cpu:0"]
    assert re.fullmatch(r"about [0-9.]+( s| min)?(-| to )[0-9.]+ (s|min)", table["Time per epoch"][0])
    assert table["Based on"][0] == "a first guess: nothing has trained on cpu:0 here yet"
    spec = PRESETS["fashion-seed"].spec
    run = DeviceRun(device="cpu:0", backend=backend_name(), synthetic=False, num_train=60_000)
    run.epoch_s, run.first_epoch_s, run.steady_epoch_s = [22.0, 20.0], 22.0, 20.0
    RunStore().record(spec, run)
    table = estimates(open_build())
    assert table["Time per epoch"][0] == "about 16-25 s"  # 20 s, give or take a quarter
    assert table["Based on"][0] == "from 1 past run of this model"
    assert table["All 5 epochs"][0] == "about 81 s to 2.1 min"  # 5 x 20 s give or take a quarter, 2 s of compiling


def test_batch_32_and_batch_1024_get_different_estimates_after_one_run_at_batch_32(runs_db):
    run = DeviceRun(device="cpu:0", backend=backend_name(), synthetic=False, num_train=60_000)
    run.epoch_s, run.first_epoch_s, run.steady_epoch_s = [22.0, 20.0], 22.0, 20.0
    RunStore().record(PRESETS["fashion-seed"].spec, run)
    at = open_build()
    seed = estimates(at)["Time per epoch"][0]
    at.pills(key=Key.PRESET).set_value("fashion-tuned").run()
    assert not at.exception
    assert at.session_state[Key.MODEL_SPEC].batch_size == 1024
    table = estimates(at)
    assert table["Time per epoch"][0] != seed
    assert table["Based on"][0] == "from 1 past run of this model with other training settings"


def test_build_and_train_show_one_epochs_setting(runs_db, monkeypatch):
    monkeypatch.setenv("GPUX_WARMUP", "0")
    at = open_build()
    at.slider(key=Key.BUILD_EPOCHS).set_value(3).run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    assert at.slider(key=Key.EPOCHS).value == 3
    at.slider(key=Key.EPOCHS).set_value(4).run()
    at.switch_page("app_pages/build.py").run()
    assert not at.exception
    assert at.slider(key=Key.BUILD_EPOCHS).value == 4
    assert at.session_state[Key.MODEL_SPEC].epochs == 4
