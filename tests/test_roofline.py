"""Tests of the roofline (lib.roofline): intensity by hand, bound labels, frames, captions, a real small copy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib import diagnosis, roofline
from lib.ceilings import Ceiling
from lib.device_run import DeviceRun
from lib.roofline import Bandwidth, BandwidthError, RooflinePoint
from lib.spec import ModelSpec

# One hidden layer of 4 units on Fashion-MNIST (784 inputs, 10 classes), batch 2.
TINY = ModelSpec(hidden_units=(4,), batch_size=2, optimizer="sgd")
TINY_WEIGHT_BYTES = ((784 + 1) * 4 + (4 + 1) * 10) * 4  # 3,190 float32 parameters: 12,760 bytes
TINY_ACTIVATION_BYTES = 2 * (784 + 4 + 10) * 4  # the batch's input, hidden and output values: 6,384 bytes
TINY_FLOPS_PER_STEP = 6 * (784 * 4 + 4 * 10) * 2  # 6 FLOPs per weight per sample (lib.spec), 2 samples

COMPUTE = 1e12  # FLOP/s: a 1 TFLOP/s compute roof
BANDWIDTH = 1e10  # bytes/s: a 10 GB/s memory, so the ridge sits at 100 FLOP/byte


def test_intensity_of_a_tiny_sgd_step_counted_by_hand():
    # Weights: forward read, backward read, update read and write; gradients written and read; SGD keeps no state;
    # activations (the input batch included) written in the forward pass and read in the backward pass.
    moved = 4 * TINY_WEIGHT_BYTES + 2 * TINY_WEIGHT_BYTES + 2 * TINY_ACTIVATION_BYTES
    assert roofline.bytes_per_step(TINY) == moved == 89_328
    assert roofline.arithmetic_intensity(TINY) == pytest.approx(38_112 / 89_328)
    assert TINY_FLOPS_PER_STEP == 38_112


def test_adam_reads_and_writes_two_moments_per_weight():
    adam = TINY.with_changes(optimizer="adam")
    assert roofline.bytes_per_step(adam) - roofline.bytes_per_step(TINY) == 2 * 2 * TINY_WEIGHT_BYTES


def test_a_larger_batch_raises_the_intensity():
    small, large = (roofline.arithmetic_intensity(ModelSpec(batch_size=size)) for size in (32, 4096))
    assert small < 10 < 100 < large


@pytest.mark.parametrize(
    ("intensity", "achieved", "bound", "attainable"),
    [
        (10.0, 0.5e11, "memory-bound", 1e11),  # left of the ridge: the memory roof is 10 x 10 GB/s
        (1000.0, 0.6e12, "compute-bound", 1e12),  # right of the ridge: the compute roof
        (100.0, 0.9e12, "compute-bound", 1e12),  # on the ridge both roofs are equal: compute wins the tie
        (1000.0, 1e10, "overhead-bound", 1e12),  # 1 % of the compute roof
        (10.0, 1.9e10, "overhead-bound", 1e11),  # 19 % of the memory roof
        (10.0, 2e10, "memory-bound", 1e11),  # 20 %: no longer overhead
    ],
)
def test_bound_labels_on_both_sides_of_the_ridge_and_far_below_it(intensity, achieved, bound, attainable):
    point = roofline.roofline_point(achieved, intensity, COMPUTE, BANDWIDTH)
    assert point.bound == bound
    assert point.attainable_flops_per_s == pytest.approx(attainable)
    assert point.ridge_intensity == pytest.approx(100.0)
    assert point.share_of_attainable == pytest.approx(achieved / attainable)
    assert point.explanation.startswith(bound.capitalize())


positive = st.floats(min_value=1e-3, max_value=1e15, allow_nan=False, allow_infinity=False)


@given(achieved=positive, intensity=positive, compute=positive, bandwidth=positive)
def test_attainable_is_never_above_either_roof(achieved, intensity, compute, bandwidth):
    point = roofline.roofline_point(achieved, intensity, compute, bandwidth)
    assert point.attainable_flops_per_s <= compute
    assert point.attainable_flops_per_s <= bandwidth * intensity
    assert point.attainable_flops_per_s in (compute, bandwidth * intensity)
    assert point.bound in roofline.BOUNDS


def fake_copy_timer(seconds: list[float]):
    calls = []

    def timer_for(backend, device):
        def time_copies(elements, count):
            calls.append((backend, device, elements, count))
            return seconds[:count]

        return time_copies

    return timer_for, calls


def test_bandwidth_is_bytes_read_and_written_over_the_median_copy(monkeypatch):
    timer_for, calls = fake_copy_timer([9.0, 9.0, 0.1, 0.3, 0.2])  # two warm-ups, then three timed copies
    monkeypatch.setattr(roofline, "_copy_timer_for", timer_for)
    measured = roofline.measure_bandwidth("gpu:0", repeats=3, backend="jax")
    assert measured == Bandwidth("gpu:0", 2 * 2**30 / 0.2, 2**30, backend="jax")
    assert calls == [("jax", "gpu:0", 2**30 // 4, roofline.WARMUP_COPIES + 3)]


def test_the_cpu_copy_fits_the_memory_available(monkeypatch):
    timer_for, calls = fake_copy_timer([1.0] * 10)
    monkeypatch.setattr(roofline, "_copy_timer_for", timer_for)
    monkeypatch.setattr("psutil.virtual_memory", lambda: type("Memory", (), {"available": 80 * 2**20})())
    assert roofline.measure_bandwidth("cpu:0", backend="tensorflow").size_bytes == 10 * 2**20


@pytest.mark.parametrize(
    ("device", "arguments", "message"),
    [
        ("tpu:0", {}, "not a normalised device name"),
        ("cpu:0", {"size_bytes": 1024}, "too small"),
        ("cpu:0", {"backend": "mxnet"}, "Unknown backend"),
    ],
)
def test_what_cannot_be_measured_says_why(device, arguments, message):
    with pytest.raises(BandwidthError, match=message):
        roofline.measure_bandwidth(device, **arguments)


def test_a_real_small_copy_on_this_cpu_through_tensorflow():
    pytest.importorskip("tensorflow")
    measured = roofline.measure_bandwidth("cpu:0", size_bytes=8 * 2**20, repeats=3, backend="tensorflow")
    assert measured.bytes_per_s > 0
    assert (measured.device, measured.size_bytes, measured.backend) == ("cpu:0", 8 * 2**20, "tensorflow")
    assert Bandwidth.from_dict(measured.to_dict() | {"unknown": 1}) == measured


def labelled(*points: tuple[str, float, float]) -> list[tuple[str, str, str, RooflinePoint]]:
    """(series, intensity, achieved) on the test's cpu:0 roofs."""
    return [
        (series, "cpu:0", "float32 strict", roofline.roofline_point(achieved, intensity, COMPUTE, BANDWIDTH))
        for series, intensity, achieved in points
    ]


def test_points_frame_has_one_row_per_run_with_every_number():
    points = roofline.points_frame(labelled(("run 1", 10.0, 5e10), ("run 2", 1000.0, 1e10)))
    assert list(points.columns) == list(roofline.POINT_COLUMNS)
    assert points["bound"].tolist() == ["memory-bound", "overhead-bound"]
    assert points["attainable_flops_per_s"].tolist() == pytest.approx([1e11, 1e12])


def test_each_roof_rises_along_the_memory_slope_to_the_ridge_then_stays_flat():
    roofs = roofline.roofs_frame(roofline.points_frame(labelled(("run 1", 10.0, 5e10), ("run 2", 1000.0, 1e10))))
    assert roofs["roof"].unique().tolist() == ["cpu:0 · float32 strict"]
    assert roofs["part"].tolist() == ["memory", "memory", "compute"]
    # The lines reach ROOF_MARGIN (4x) beyond the outermost intensities (10 and 1000), through the ridge (100).
    assert roofs["intensity"].tolist() == pytest.approx([2.5, 100.0, 4000.0])
    assert roofs["flops_per_s"].tolist() == pytest.approx([2.5e10, 1e12, 1e12])


def test_no_points_no_roofs():
    assert roofline.roofs_frame(roofline.points_frame([])).empty
    assert roofline.roofline_caption(roofline.points_frame([])) == ""


def test_caption_of_runs_with_one_bound_gives_their_shares_and_what_it_means():
    points = roofline.points_frame(labelled(("cpu", 1000.0, 3e10), ("gpu", 1000.0, 1.2e11)))
    caption = roofline.roofline_caption(points, ["gpu:1 · run 3"])
    assert caption.startswith("Both runs are overhead-bound: they reach 3% and 12% of what their roofs allow.")
    assert roofline.BOUND_EXPLANATIONS["overhead-bound"] in caption
    assert caption.endswith("Not drawn (no roofs measured for their device here): gpu:1 · run 3.")


def test_caption_of_runs_with_different_bounds_names_each():
    caption = roofline.roofline_caption(roofline.points_frame(labelled(("cpu", 10.0, 5e10), ("gpu", 1000.0, 8e11))))
    assert caption.startswith(
        "What bounds each run: cpu is memory-bound (50% of what its roofs allow); gpu is compute-bound (80% "
    )
    assert roofline.BOUND_EXPLANATIONS["memory-bound"] in caption
    assert roofline.BOUND_EXPLANATIONS["compute-bound"] in caption


# --- lib.diagnosis: the one-line verdict from the roofline where the bandwidth is measured ---

CPU_CEILING = [Ceiling("cpu:0", "float32 strict", 4096, 0.316, COMPUTE)]
CPU_BANDWIDTH = [Bandwidth("cpu:0", BANDWIDTH, 2**28, "tensorflow")]


def cpu_run(achieved_flops_per_s: float) -> DeviceRun:
    return DeviceRun(
        device="cpu:0",
        backend="tensorflow",
        synthetic=True,
        num_train=60_000,
        epoch_s=[2.0, 1.0, 1.0],
        first_epoch_s=2.0,
        steady_epoch_s=1.0,
        total_s=4.0,
        achieved_flops_per_s=achieved_flops_per_s,
    )


def roof_at(spec: ModelSpec) -> float:
    return min(COMPUTE, BANDWIDTH * roofline.arithmetic_intensity(spec))


@pytest.mark.parametrize(
    ("batch_size", "share", "verdict", "words"),
    [
        (32, 0.6, "memory-bound", "memory-bound (60% of its memory roof at 4.7 FLOP per byte, the ridge at 100)"),
        (4096, 0.6, "compute-bound", "compute-bound (60% of the float32 strict ceiling at 209.5 FLOP per byte"),
        (32, 0.05, "overhead-bound", "bound by per-step overhead (5.0% of what its roofs allow"),
    ],
)
def test_the_diagnosis_reads_the_roofline_where_the_bandwidth_is_measured(batch_size, share, verdict, words):
    spec = ModelSpec(batch_size=batch_size)
    result = diagnosis.assess(cpu_run(share * roof_at(spec)), spec, CPU_CEILING, CPU_BANDWIDTH)
    assert result.verdict == verdict
    assert words in result.message
    assert result.roofline.share_of_attainable == pytest.approx(share)


def test_an_overhead_bound_step_says_how_long_its_work_needs_at_the_roofs():
    spec = ModelSpec(batch_size=32)  # 1,875 steps per 1 s epoch: 0.53 ms each
    message = diagnosis.diagnose(cpu_run(0.05 * roof_at(spec)), spec, CPU_CEILING, CPU_BANDWIDTH)
    assert "each step took 0.53 ms, but its arithmetic and memory traffic need only 26.7 µs" in message


def test_a_run_above_its_memory_roof_is_explained_by_the_caches():
    spec = ModelSpec(batch_size=32)
    message = diagnosis.diagnose(cpu_run(1.5 * roof_at(spec)), spec, CPU_CEILING, CPU_BANDWIDTH)
    assert "above its memory roof: the weights stay in the caches" in message


def test_without_a_bandwidth_the_thresholds_still_decide():
    spec = ModelSpec(batch_size=32)
    result = diagnosis.assess(cpu_run(0.05 * roof_at(spec)), spec, CPU_CEILING)
    assert result.roofline is None
    assert result.verdict in diagnosis.VERDICTS[:6]


def test_roofline_frames_leave_out_runs_without_both_roofs():
    spec = ModelSpec(batch_size=32)
    gpu = DeviceRun(device="gpu:0", backend="tensorflow", synthetic=True, num_train=60_000)
    entries = [("cpu", cpu_run(1e10), spec), ("gpu", gpu, spec)]
    points, roofs = diagnosis.roofline_frames(entries, CPU_CEILING, CPU_BANDWIDTH)
    assert points["series"].tolist() == ["cpu"]
    assert roofs["roof"].unique().tolist() == ["cpu:0 · float32 strict"]
