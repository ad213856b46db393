"""AppTests of the router (streamlit_app.py): the shared sidebar, the default page, and the device list before
and after the background import of Keras."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from lib.backend import backend_name
from lib.devices import DeviceInfo
from lib.presets import TUTORIAL_LINK
from lib.probe import PROBE_SOURCE
from tests.conftest import REPO_ROOT
from ui import runtime

PAGES = (
    "home",
    "gpu",
    "datasets",
    "build",
    "train",
    "results",
    "board",
)  # app_pages/<name>.py, as the router lists them
BACKEND_LIBRARIES = ("tensorflow", "jax", "keras", "torch")  # what no page's first run may import
PROBE_DEVICES = [
    DeviceInfo("cpu:0", "CPU", "Probed CPU, 2 cores", 2**34, None, "tensorflow", PROBE_SOURCE),
    DeviceInfo("gpu:0", "GPU", "NVIDIA H200", 141 * 2**30, "9.0", "tensorflow", PROBE_SOURCE),
]
BACKEND_DEVICES = [DeviceInfo("cpu:0", "CPU", "Listed CPU, 2 cores", 2**34, None, "tensorflow")]
RELEASE_TIMEOUT_S = 300  # a guard: a held import that nobody releases ends the test instead of hanging it


def open_app() -> AppTest:
    return AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120).run()


def sidebar_captions(at: AppTest) -> list[str]:
    return [caption.value for caption in at.sidebar.caption]


class HeldBackendImport:
    """Stands in for the backend's device listing, which returns `BACKEND_DEVICES` only once released."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def list_devices(self, backend: str | None = None) -> list[DeviceInfo]:
        assert self.released.wait(RELEASE_TIMEOUT_S), "the test never released the backend import"
        return BACKEND_DEVICES


@contextlib.contextmanager
def backend_held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldBackendImport]:
    """The probe finds a CPU and a GPU; the background import of the backend waits until the test releases it."""
    monkeypatch.delenv(runtime.WARMUP_ENV, raising=False)
    monkeypatch.setattr(runtime, "probed_devices", lambda: PROBE_DEVICES)
    held = HeldBackendImport()
    monkeypatch.setattr(runtime, "list_devices", held.list_devices)
    runtime._backend_warmup.clear()
    warmup = runtime._backend_warmup()
    try:
        yield held
    finally:
        held.released.set()
        warmup.wait()
        runtime._backend_warmup.clear()


@pytest.fixture
def held_backend(monkeypatch) -> Iterator[HeldBackendImport]:
    with backend_held(monkeypatch) as held:
        yield held


def test_router_renders_the_default_page_without_exception():
    at = open_app()
    assert not at.exception
    assert at.title[0].value == "CPU vs GPU deep learning"


def test_home_page_links_every_step_and_names_the_tutorial_presets():
    at = open_app()
    markdown = " ".join(element.value for element in at.markdown)
    assert f"two presets reproduce the experiments of {TUTORIAL_LINK}" in markdown
    assert "**CIFAR-10, as in the tutorial** and **Fashion-MNIST, as in the tutorial**" in markdown
    assert "-seed" not in markdown  # titles, not the presets' link names
    assert "softmax" in markdown
    page_links = at.get("page_link")
    steps = ["gpu", "datasets", "build", "train", "results", "sweep"]
    assert [link.proto.page for link in page_links] == [*steps, "board"]


def test_sidebar_shows_the_probes_devices_while_the_backend_loads(held_backend):
    at = open_app()
    assert not at.exception
    captions = sidebar_captions(at)
    assert f"Keras backend: **{backend_name()}**" in captions
    assert any("`cpu:0` Probed CPU, 2 cores" in caption for caption in captions)
    assert any("`gpu:0` NVIDIA H200" in caption for caption in captions)
    assert captions[-1] == runtime.BACKEND_LOADING_NOTE
    assert runtime.backend_loading() and not runtime.backend_ready()


def test_the_backends_list_replaces_the_probes_once_loaded(held_backend):
    at = open_app()
    held_backend.released.set()
    runtime.wait_for_backend()
    at.run()
    assert not at.exception
    captions = sidebar_captions(at)
    assert any("`cpu:0` Listed CPU, 2 cores" in caption for caption in captions)
    assert not any("gpu:0" in caption or "Probed CPU" in caption for caption in captions)
    assert runtime.BACKEND_LOADING_NOTE not in captions
    assert runtime.backend_ready()
    assert runtime.training_device_names() == ["cpu:0"]


def test_a_backend_that_cannot_load_keeps_the_probes_list_and_says_so(monkeypatch):
    monkeypatch.setenv(runtime.WARMUP_ENV, "0")
    monkeypatch.setattr(runtime, "probed_devices", lambda: PROBE_DEVICES)

    def broken_backend(backend: str | None = None):
        raise runtime.BackendUnavailableError("The Keras backend 'mxnet' is not installed.")

    monkeypatch.setattr(runtime, "list_devices", broken_backend)
    runtime._backend_warmup.clear()
    try:
        with pytest.raises(runtime.BackendUnavailableError, match="'mxnet' is not installed"):
            runtime.wait_for_backend()
        at = open_app()
        assert not at.exception
        captions = sidebar_captions(at)
        assert any("`gpu:0` NVIDIA H200" in caption for caption in captions)
        assert captions[-1] == runtime.BACKEND_FAILED_NOTE
    finally:
        runtime._backend_warmup.clear()


def test_datasets_page_is_reachable_through_the_router():
    at = open_app()
    at.switch_page("app_pages/datasets.py").run()
    assert not at.exception
    assert at.title[0].value == "Datasets"


def first_runs_report() -> None:
    """Opens each page through the router in a fresh AppTest; prints, per page, the backend libraries imported.

    Run in a fresh process with the warm-up off, so that only what the router and the pages import counts.
    """
    report = {}
    for page in PAGES:
        at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120)
        if page != "home":
            at.switch_page(f"app_pages/{page}.py")
        at.run()
        report[page] = {
            "title": at.title[0].value if at.title else None,
            "exception": [str(error.value) for error in at.exception],
            "imported": [name for name in BACKEND_LIBRARIES if name in sys.modules],
            "note": sidebar_captions(at)[-1],
        }
    print(json.dumps(report))


def test_no_page_imports_a_backend_library_on_its_first_run(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {
        **os.environ,
        runtime.WARMUP_ENV: "0",
        "GPUX_WARM_WORKER": "0",  # no spare worker process for the Train page's job runner
        "GPUX_RUNS_DB": str(tmp_path / "runs.sqlite"),
        # No dataset anywhere: the Datasets page reads its images through Keras' own loaders, by design.
        "GPUX_DATA_DIR": str(empty),
        "GPUX_FASHION_MNIST_DIR": str(empty),
        "KERAS_HOME": str(empty),
    }
    result = subprocess.run(
        [sys.executable, "-c", "from tests.test_router import first_runs_report; first_runs_report()"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(report) == list(PAGES)
    for page, seen in report.items():
        assert seen["exception"] == [], page
        assert seen["title"], page
        assert seen["imported"] == [], f"the {page} page's first run imported {seen['imported']}"
        assert seen["note"] == runtime.BACKEND_NOT_LOADED_NOTE, page


@pytest.mark.parametrize(("no_gpu", "cuda_line_kept"), [(True, False), (False, True)])
def test_the_backends_import_chatter_stays_out_of_the_server_log(capfd, no_gpu, cuda_line_kept):
    chatter = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796217907.898578   10069 port.cc:153] oneDNN custom operations are on.",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
        "appropriate compiler flags.",
    ]
    cuda_error = "E0000 00:00:1796217910.982890   10069 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)"
    kept = ["2026-12-02 13:25:05.788 Streamlit's own line, written meanwhile", "F0000 00:00:1.0 1 x.cc:1] a crash"]
    with runtime._native_chatter_filtered(no_gpu):
        os.write(2, "\n".join([*chatter, kept[0], cuda_error, kept[1]]).encode() + b"\n")
    lines = capfd.readouterr().err.splitlines()
    assert lines == [kept[0], *([cuda_error] if cuda_line_kept else []), kept[1]]
