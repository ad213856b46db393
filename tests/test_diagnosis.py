"""Tests of the 'how close to the hardware' arithmetic and diagnosis (lib.diagnosis), on synthetic numbers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lib import diagnosis
from lib.ceilings import Ceiling
from lib.device_run import DeviceRun
from lib.spec import ModelSpec

CIFAR_FLOPS_PER_SAMPLE = 73.4e6  # 6 x (3072 x 3000 + 3000 x 1000 + 1000 x 10)
H200 = [
    Ceiling("gpu:0", "float32 strict", 8192, 0.0216, 51e12),
    Ceiling("gpu:0", "tf32", 8192, 0.00274, 402e12),
    Ceiling("gpu:0", "bfloat16", 8192, 0.00142, 774e12),
]
CPU = [Ceiling("cpu:0", "float32 strict", 4096, 0.316, 435e9), Ceiling("cpu:0", "bfloat16", 2048, 1.1, 15e9)]


def cifar_run(device="gpu:0", backend="jax", *, num_train=49_152, first=5.0, steady=1.30, epochs=10) -> DeviceRun:
    return DeviceRun(
        device=device,
        backend=backend,
        synthetic=True,
        num_train=num_train,
        epoch_s=[first] + [steady] * (epochs - 1),
        first_epoch_s=first,
        steady_epoch_s=steady,
        total_s=first + steady * (epochs - 1),
        samples_per_s=num_train / steady,
        achieved_flops_per_s=CIFAR_FLOPS_PER_SAMPLE * num_train / steady,
    )


def cifar_spec(batch_size=32, precision="float32") -> ModelSpec:
    return ModelSpec(dataset="cifar10", hidden_units=(3000, 1000), batch_size=batch_size, precision=precision)


@pytest.mark.parametrize(
    ("precision", "backend", "device", "expected"),
    [
        ("float32", "jax", "gpu:0", "tf32"),
        ("float32", "tensorflow", "gpu:1", "tf32"),
        ("float32", "torch", "gpu:0", "float32 strict"),
        ("float32", "jax", "cpu:0", "float32 strict"),
        ("mixed_bfloat16", "torch", "gpu:0", "bfloat16"),
        ("mixed_bfloat16", "tensorflow", "cpu:0", "bfloat16"),
    ],
)
def test_run_precision(precision, backend, device, expected):
    assert diagnosis.run_precision(precision, backend, device) == expected


def test_efficiency_is_achieved_over_ceiling():
    run = cifar_run(steady=1.30)
    share = diagnosis.efficiency(run, H200[1])
    assert share == pytest.approx(CIFAR_FLOPS_PER_SAMPLE * 49_152 / 1.30 / 402e12)
    assert diagnosis.efficiency(run, None) is None
    assert diagnosis.efficiency(DeviceRun(device="gpu:0", backend="jax", synthetic=True), H200[1]) is None


def test_tutorial_batch_on_gpu_is_overhead_bound():
    result = diagnosis.assess(cifar_run(steady=1.30), cifar_spec(32), H200)
    assert result.verdict == "overhead"
    assert result.precision == "tf32"
    assert result.message.startswith("bound by per-step overhead")
    assert result.message.endswith("try a larger batch or more steps per execution")
    assert result.steps_per_epoch == pytest.approx(1536)
    assert result.step_s == pytest.approx(1.30 / 1536)
    assert result.ideal_step_s == pytest.approx(CIFAR_FLOPS_PER_SAMPLE * 32 / 402e12)


def test_overhead_figures_come_in_milliseconds_with_a_plain_reading():
    # The tutorial's CIFAR-10 model at batch 32 on a CPU: 14,677 µs per step, 4.7 % of the ceiling.
    spec = cifar_spec(32)
    step_s = 0.014677
    achieved = CIFAR_FLOPS_PER_SAMPLE * 32 / step_s
    run = cifar_run("cpu:0", "tensorflow", num_train=3200, steady=step_s * 100, first=step_s * 120, epochs=3)
    run.achieved_flops_per_s = achieved
    cpu = [Ceiling("cpu:0", "float32 strict", 4096, 0.316, achieved / 0.047)]
    message = diagnosis.diagnose(run, spec, cpu)
    assert message == (
        "bound by per-step overhead (4.7% of the float32 strict ceiling): each step took 14.7 ms, but its arithmetic "
        "needs only 0.69 ms at this device's top speed, so the device spent most of each step on the framework's "
        "per-step work in Python rather than multiplying matrices; try a larger batch or more steps per execution"
    )
    assert "µs" not in message and "14677" not in message


def test_gpu_overhead_says_the_device_waits_for_python_and_tiny_times_in_microseconds():
    message = diagnosis.diagnose(cifar_run(steady=1.30), cifar_spec(32), H200)
    assert "each step took 0.85 ms, but its arithmetic needs only 5.8 µs" in message
    assert "waiting for Python to launch the next piece of work rather than multiplying matrices" in message


def test_data_movement_says_what_the_device_waits_for():
    message = diagnosis.diagnose(cifar_run(steady=0.095, first=0.5), cifar_spec(2048), H200)
    assert "it spent most of each step waiting for data to be copied or read rather than multiplying" in message


def test_large_batch_with_host_input_is_data_bound():
    # fit on NumPy input at batch 2048: 0.095 s per epoch, about 9 % of the TF32 ceiling.
    result = diagnosis.assess(cifar_run(steady=0.095, first=0.5), cifar_spec(2048), H200)
    assert result.verdict == "data movement"
    assert "keep the input on the device" in result.message


@pytest.mark.parametrize(
    ("precision", "hint"),
    [("float32", "use mixed precision to halve the bytes moved"), ("mixed_bfloat16", "a larger batch reuses")],
)
def test_data_movement_hint_once_the_input_is_on_the_device(precision, hint):
    spec = SimpleNamespace(batch_size=2048, precision=precision, device_resident=True)
    result = diagnosis.assess(cifar_run(steady=0.2, first=0.5), spec, H200)
    assert result.verdict == "data movement"
    assert hint in result.message
    assert "keep the input on the device" not in result.message


def test_compilation_verdict_keeps_the_steady_state_diagnosis():
    # Same steady state, but 10 epochs behind a 3 s first epoch: compilation is 75 % of the run.
    result = diagnosis.assess(cifar_run(steady=0.095, first=3.0), cifar_spec(2048), H200)
    assert result.verdict == "compilation"
    assert result.steady_verdict == "data movement"
    assert "keep the input on the device" in result.steady_message


def test_compilation_dominates_a_short_run():
    run = cifar_run(first=10.0, steady=0.1, epochs=3)
    result = diagnosis.assess(run, cifar_spec(2048), H200)
    assert result.verdict == "compilation"
    assert result.compile_s == pytest.approx(9.9)
    assert result.compile_share_of_first_epoch == pytest.approx(0.99)
    assert result.compile_share_of_run == pytest.approx(9.9 / 10.2)
    assert result.message == (
        "compilation dominates: 97% of the run was the first epoch's compilation, the time spent turning the model "
        "into device code before training, which later epochs do not pay again; run more epochs"
    )


def test_close_to_the_hardware_suggests_mixed_precision_when_bf16_is_faster():
    steady = CIFAR_FLOPS_PER_SAMPLE * 49_152 / (0.6 * 402e12)  # 60 % of the TF32 ceiling
    result = diagnosis.assess(cifar_run(steady=steady, first=steady * 2), cifar_spec(2048), H200)
    assert result.verdict == "close"
    assert result.share_of_ceiling == pytest.approx(0.6)
    assert result.message == (
        "close to the hardware (60% of the tf32 ceiling): the device spent most of each step multiplying matrices, "
        "near its top speed; in mixed precision (mixed_bfloat16) this device multiplies 1.9 times faster"
    )


def test_close_on_cpu_has_no_bf16_hint_when_bf16_is_slower():
    steady = CIFAR_FLOPS_PER_SAMPLE * 10_240 / 300e9  # 300 GFLOP/s of a 435 GFLOP/s ceiling
    run = cifar_run("cpu:0", "tensorflow", num_train=10_240, steady=steady, first=steady * 1.2, epochs=3)
    assert diagnosis.diagnose(run, cifar_spec(2048), CPU) == (
        "close to the hardware (69% of the float32 strict ceiling): the device spent most of each step multiplying "
        "matrices, near its top speed"
    )


def test_tutorial_batch_on_cpu_is_overhead_bound():
    # Fashion-MNIST MLP at batch 32: 8.4 MFLOP x 32 per step = 0.6 ms at 435 GFLOP/s, under the CPU's 1 ms floor.
    spec = ModelSpec(batch_size=32)
    run = cifar_run("cpu:0", "tensorflow", num_train=10_240, steady=10_240 * 8.4e6 / 60e9, first=5.0, epochs=3)
    run.achieved_flops_per_s = 60e9
    result = diagnosis.assess(run, spec, CPU)
    assert result.verdict == "overhead"
    assert result.message.endswith("try a larger batch or more steps per execution")


def test_data_movement_hint_on_cpu_is_a_larger_batch():
    # Batch 256 on the CPU (6 ms of arithmetic per step) at 10 % of the ceiling.
    steady = CIFAR_FLOPS_PER_SAMPLE * 10_240 / 43.5e9
    run = cifar_run("cpu:0", "tensorflow", num_train=10_240, steady=steady, first=steady * 1.2, epochs=3)
    result = diagnosis.assess(run, cifar_spec(256), CPU)
    assert result.verdict == "data movement"
    assert result.message.endswith("a larger batch reuses each weight for more samples per byte read")


def test_above_the_ceiling_asks_to_measure_it_again():
    steady = CIFAR_FLOPS_PER_SAMPLE * 10_240 / 900e9  # twice the 435 GFLOP/s ceiling
    run = cifar_run("cpu:0", "tensorflow", num_train=10_240, steady=steady, first=steady * 1.2, epochs=3)
    message = diagnosis.diagnose(run, cifar_spec(2048), CPU)
    assert message.startswith("at the hardware's limit (207% of the float32 strict ceiling): faster than the fastest")
    assert "measure it again" in message


def test_middle_band_is_partly_overhead():
    steady = CIFAR_FLOPS_PER_SAMPLE * 10_240 / 166e9  # the tutorial's batch 32 on this CPU: 38 %
    run = cifar_run("cpu:0", "tensorflow", num_train=10_240, steady=steady, first=steady * 1.1, epochs=3)
    result = diagnosis.assess(run, cifar_spec(32), CPU)
    assert result.verdict == "partly overhead"
    assert result.message.startswith("38% of the float32 strict ceiling: the device multiplied matrices for part")
    assert result.message.endswith("a larger batch or more steps per execution may close some of the gap")


def test_mixed_precision_run_is_compared_with_the_bf16_ceiling():
    result = diagnosis.assess(cifar_run(steady=0.02, first=2.0), cifar_spec(4096, "mixed_bfloat16"), H200)
    assert result.precision == "bfloat16"
    assert result.ceiling_flops_per_s == 774e12
    assert result.share_of_ceiling == pytest.approx(CIFAR_FLOPS_PER_SAMPLE * 49_152 / 0.02 / 774e12)


def test_missing_timing_or_ceiling_says_so():
    unfinished = DeviceRun(device="gpu:0", backend="jax", synthetic=True, status="cancelled", num_train=100)
    assert diagnosis.assess(unfinished, cifar_spec(), H200).verdict == "no timing"
    no_ceiling = diagnosis.assess(cifar_run("gpu:1"), cifar_spec(), H200)
    assert no_ceiling.verdict == "no timing"
    assert "no tf32 ceiling measured for gpu:1" in no_ceiling.message


def test_efficiency_frame_has_one_row_per_run_in_chart_units():
    frame = diagnosis.efficiency_frame(
        [("gpu:0 · run 1", cifar_run(steady=1.30), cifar_spec(32)), ("cpu:0", cifar_run("cpu:0"), cifar_spec(32))],
        H200 + CPU,
    )
    assert list(frame.columns) == list(diagnosis.EFFICIENCY_COLUMNS)
    assert list(frame["series"]) == ["gpu:0 · run 1", "cpu:0"]
    first = frame.iloc[0]
    assert first["achieved_tflops"] == pytest.approx(CIFAR_FLOPS_PER_SAMPLE * 49_152 / 1.30 / 1e12)
    assert first["ceiling_tflops"] == pytest.approx(402)
    assert first["step_ms"] == pytest.approx(1.30 / 1536 * 1e3)
    assert first["compile_share_of_first_epoch"] == pytest.approx((5.0 - 1.30) / 5.0)
    assert first["verdict"] == "overhead"
    assert frame.iloc[1]["precision"] == "float32 strict"
