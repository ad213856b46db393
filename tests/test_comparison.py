"""Tests of the Results page's comparison logic: the default comparison, run names, computed captions."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from lib import charts
from lib.comparison import (
    GENERATED_ACCURACY_NOTE,
    accuracy_caption,
    choose_comparison,
    epoch_time_caption,
    loss_caption,
    outside_epochs_by_run,
    run_names,
    throughput_caption,
    time_gap_text,
    total_time_caption,
    train_accuracy_caption,
)
from lib.presets import PRESETS
from lib.store import RunStore
from tests.helpers.runs import device_run

SEED = PRESETS["fashion-seed"].spec
TUNED = PRESETS["fashion-tuned"].spec
CIFAR = PRESETS["cifar10-seed"].spec


@pytest.fixture
def store(runs_db) -> RunStore:
    return RunStore()


def record(
    store, spec, device="cpu:0", job=None, preset=None, epoch_s=(9.0, 7.0, 7.0), hardware=None, **run_changes
) -> int:
    run = device_run(device, list(epoch_s))
    for name, value in run_changes.items():
        setattr(run, name, value)
    return store.record(spec, run, preset=preset, job_id=job, hardware=hardware)


def node(name: str, gpus: tuple[str, ...] = ()) -> dict:
    """The hardware a worker on a cluster's node reports, as the runner stores it with the node's name."""
    return {"cpu_model": "Test CPU", "logical_cores": 8, "gpus": list(gpus), "host": f"ip-{name}", "node": name}


def named(runs: pd.DataFrame, ids) -> dict[int, str]:
    compared = runs[runs["id"].isin(ids)]
    return dict(zip(compared["id"], run_names(compared), strict=True))


# --- the default comparison ---


def test_cpu_only_store_compares_the_latest_runs_that_differ_in_batch_size_only(store):
    small = record(store, SEED, job="a", preset="fashion-seed")
    record(store, CIFAR, job="b", preset="cifar10-seed")
    large = record(store, SEED.with_changes(batch_size=1024), job="c")
    record(store, TUNED, job="d", preset="fashion-tuned")  # the latest: 4 settings away from every other run
    comparison = choose_comparison(store.runs())
    assert comparison.run_ids == (small, large)
    assert comparison.rule == "one_setting"
    assert "no GPU run is stored" in comparison.reason
    assert "one setting only, batch size" in comparison.reason
    assert "Fashion-MNIST, as in the tutorial" in comparison.reason


def test_one_setting_group_keeps_one_run_per_value_of_that_setting(store):
    first = record(store, SEED, job="a")
    record(store, SEED, job="b")  # the same settings again: the newer of the two is kept
    second = record(store, SEED, job="c")
    samples = [record(store, SEED, job=job, num_train=count) for job, count in (("d", 2000), ("e", 4000))]
    comparison = choose_comparison(store.runs())
    assert comparison.rule == "one_setting"
    assert "sample count" in comparison.reason
    assert comparison.run_ids == (second, *samples)
    assert first not in comparison.run_ids


def test_store_with_gpu_runs_compares_the_latest_cpu_and_gpu_runs_of_one_model(store):
    record(store, SEED, job="a", preset="fashion-seed")
    cpu = record(store, SEED, job="b", preset="fashion-seed")
    gpu = record(store, SEED, "gpu:0", job="c", preset="fashion-seed")
    record(store, SEED.with_changes(batch_size=1024), job="d")  # the latest job, CPU only
    comparison = choose_comparison(store.runs())
    assert comparison.rule == "cpu_vs_gpu"
    assert comparison.run_ids == (cpu, gpu)
    assert comparison.reason == (
        "The latest CPU and GPU runs of Fashion-MNIST, as in the tutorial "
        "(cpu:0 vs gpu:0, the same settings otherwise)."
    )


def test_cpu_vs_gpu_prefers_a_pair_that_differs_in_the_device_only(store):
    cpu = record(store, SEED, job="a")
    gpu = record(store, SEED, "gpu:0", job="b")
    record(store, SEED.with_changes(batch_size=256), job="c")  # newer, but it differs from the GPU run in batch too
    assert choose_comparison(store.runs()).run_ids == (cpu, gpu)


def test_cpu_vs_gpu_names_the_other_differences_when_no_exact_pair_exists(store):
    record(store, SEED, "gpu:0", job="a")
    record(store, SEED.with_changes(batch_size=256), job="b")
    comparison = choose_comparison(store.runs())
    assert comparison.rule == "cpu_vs_gpu"
    assert "they also differ in batch size" in comparison.reason


def test_latest_job_on_several_devices_is_compared_first(store):
    record(store, SEED, job="a")
    record(store, SEED, "gpu:0", job="b")
    both = [record(store, TUNED, device, job="c", preset="fashion-tuned") for device in ("cpu:0", "gpu:0")]
    comparison = choose_comparison(store.runs())
    assert comparison.rule == "job"
    assert comparison.run_ids == tuple(both)
    assert comparison.reason == (
        "The latest job trained Fashion-MNIST, tuned for the GPU on cpu:0 and gpu:0: its devices side by side."
    )


def test_the_sessions_own_job_comes_before_the_latest_one(store):
    mine = [record(store, SEED, device, job="mine") for device in ("cpu:0", "gpu:0")]
    record(store, TUNED, job="later")
    comparison = choose_comparison(store.runs(), "mine")
    assert comparison.run_ids == tuple(mine)
    assert comparison.reason.startswith("Your latest job trained")


def test_no_comparable_pair_draws_the_latest_run_alone_and_says_so(store):
    record(store, SEED, job="a")
    latest = record(store, CIFAR, job="b")
    comparison = choose_comparison(store.runs())
    assert (comparison.rule, comparison.run_ids) == ("single", (latest,))
    assert "no two stored runs of one model differ in just one setting" in comparison.reason


def test_unfinished_runs_are_never_chosen(store):
    done = record(store, SEED, job="a")
    record(store, SEED.with_changes(batch_size=64), job="b", status="failed")
    assert choose_comparison(store.runs()).run_ids == (done,)
    assert choose_comparison(store.runs(status="failed")).rule == "none"


# --- run names ---


def test_runs_are_named_by_the_one_setting_that_differs(store):
    small = record(store, SEED, preset="fashion-seed")
    large = record(store, SEED.with_changes(batch_size=1024))
    assert named(store.runs(), [small, large]) == {small: "batch 32", large: "batch 1,024"}


def test_devices_and_a_second_setting_are_both_named(store):
    cpu = record(store, SEED)
    gpu = record(store, SEED.with_changes(batch_size=1024), "gpu:0")
    assert named(store.runs(), [cpu, gpu]) == {cpu: "cpu:0 · batch 32", gpu: "gpu:0 · batch 1,024"}


def test_presets_are_named_by_their_title_not_their_code(store):
    seed = record(store, SEED, preset="fashion-seed")
    tuned = record(store, TUNED, "gpu:0", preset="fashion-tuned")
    assert named(store.runs(), [seed, tuned]) == {
        seed: "Fashion-MNIST, as in the tutorial · cpu:0",
        tuned: "Fashion-MNIST, tuned for the GPU · gpu:0",
    }


def test_a_preset_beside_a_custom_model_is_named_by_the_settings(store):
    seed = record(store, SEED, preset="fashion-seed")
    custom = record(store, SEED.with_changes(learning_rate=0.01))
    assert named(store.runs(), [seed, custom]) == {seed: "learning rate 0.001", custom: "learning rate 0.01"}


def test_real_and_generated_data_are_named_and_identical_runs_get_their_id(store):
    real = record(store, SEED)
    generated = record(store, SEED, synthetic=True)
    again = record(store, SEED)
    assert named(store.runs(), [real, generated]) == {real: "real data", generated: "generated data"}
    assert named(store.runs(), [real, again]) == {real: f"cpu:0 · #{real}", again: f"cpu:0 · #{again}"}


def test_one_run_alone_is_named_by_its_device(store):
    run = record(store, SEED, "gpu:0")
    assert named(store.runs(), [run]) == {run: "gpu:0"}


# --- captions computed from the data ---


def summary_of(store, ids=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    runs = store.runs()
    compared = runs if ids is None else runs[runs["id"].isin(ids)]
    return compared, charts.run_summary_frame(compared), charts.run_epochs_frame(compared)


def test_total_time_and_throughput_captions_give_the_measured_ratios(store):
    record(store, SEED, "cpu:0", epoch_s=(9.0, 7.0, 7.0))
    record(store, SEED, "gpu:0", epoch_s=(3.0, 1.0, 1.0))
    _, summary, _ = summary_of(store)
    assert total_time_caption(summary) == (
        "Total training time per run (the sum of its epochs): gpu:0 took 5.00 s, 4.6x less than cpu:0 (23.0 s)."
    )
    assert "gpu:0 trained 7.0x as many per second as cpu:0 (1,000 vs 143 samples/s)" in throughput_caption(summary)
    assert epoch_time_caption(summary).startswith(
        "Epoch 1 against a later epoch: cpu:0 9.00 s vs 7.00 s (+2.00 s); gpu:0 3.00 s vs 1.00 s (+2.00 s)."
    )


def test_gap_between_total_and_throughput_ratios_is_explained_by_the_fixed_cost(store):
    record(store, SEED, "cpu:0", epoch_s=(9.0, 7.0, 7.0))
    gpu = record(store, SEED, "gpu:0", epoch_s=(3.0, 1.0, 1.0))
    _, summary, _ = summary_of(store)
    text = time_gap_text(summary, {str(gpu): 8.0})
    assert text.startswith("**Why the total is only 4.6x shorter when throughput is 7.0x higher:**")
    assert "Of gpu:0's 5.00 s, 2.00 s (40%) is fixed cost: epoch 1 took 3.00 s against 1.00 s" in text
    assert "the other epochs took 2.00 s" in text
    assert "Of cpu:0's 23.0 s, 2.00 s (9%) is fixed cost" in text
    assert "the total-time ratio approaches the throughput ratio" in text
    assert "they took a further 8.00 s for gpu:0's job, outside the epochs" in text


def test_ratios_that_agree_are_said_to_agree(store):
    record(store, SEED, "cpu:0", epoch_s=(7.0, 7.0, 7.0))
    record(store, SEED, "gpu:0", epoch_s=(1.0, 1.0, 1.0))
    _, summary, _ = summary_of(store)
    text = time_gap_text(summary)
    assert text.startswith("**Total time and throughput agree (total time 7.0x, throughput 7.0x):**")
    assert "are not in these totals." in text


def test_runs_of_different_sizes_point_to_throughput(store):
    record(store, SEED, "cpu:0", num_train=1000)
    record(store, SEED, "cpu:0", epoch_s=(3.0, 1.0, 1.0), num_train=5000)
    _, summary, _ = summary_of(store)
    text = time_gap_text(summary)
    assert "measure different things here" in text
    assert "5,000 samples x 5 epochs" in text and "1,000 samples x 5 epochs" in text


def test_one_run_has_no_gap_to_explain(store):
    record(store, SEED)
    _, summary, _ = summary_of(store)
    assert time_gap_text(summary) == ""


def test_overlapping_loss_curves_are_said_to_overlap(store):
    record(store, SEED, "cpu:0", train_loss=[1.0, 0.8, 0.6])
    record(store, SEED, "gpu:0", train_loss=[1.01, 0.8, 0.61])
    runs, _, epochs = summary_of(store)
    assert loss_caption(epochs, runs) == (
        "The loss curves overlap: within 1.7% of each other at every epoch. "
        "As expected: the same model and random seed learn alike on any device."
    )


def test_loss_curves_that_differ_say_where_and_why(store):
    record(store, SEED, train_loss=[1.0, 0.8, 0.6])
    record(store, SEED.with_changes(batch_size=1024), train_loss=[1.2, 1.1, 0.9])
    runs, _, epochs = summary_of(store)
    caption = loss_caption(epochs, runs)
    assert caption.startswith("The loss curves differ, most at epoch 3: batch 32 0.600, batch 1,024 0.900")
    assert "(40% apart)" in caption
    assert "Expected: the runs differ in batch size" in caption


def test_loss_curves_that_differ_on_the_same_settings_are_flagged(store):
    record(store, SEED, "cpu:0", train_loss=[1.0, 0.8, 0.6])
    record(store, SEED, "gpu:0", train_loss=[1.0, 1.0, 1.0])
    runs, _, epochs = summary_of(store)
    assert "Unexpected: the same model and random seed should learn alike" in loss_caption(epochs, runs)


def test_accuracy_captions_leave_generated_data_out(store):
    record(store, SEED, test_accuracy=0.812)
    record(store, SEED, test_accuracy=0.1, synthetic=True)
    _, summary, epochs = summary_of(store)
    caption = accuracy_caption(summary)
    assert caption == (
        f"real data: 81.2% on test images it never saw. generated data: {GENERATED_ACCURACY_NOTE}, so no bar is drawn."
    )
    train = train_accuracy_caption(summary, epochs)
    assert train.startswith("Last epoch's training accuracy: real data 70.0% on training images vs 81.2%")
    assert "Generated-data runs are left out" in train


def test_accuracies_of_several_runs_say_how_far_apart_they_are(store):
    record(store, SEED, "cpu:0", test_accuracy=0.81)
    record(store, SEED, "gpu:0", test_accuracy=0.8)
    runs, summary, _ = summary_of(store)
    assert accuracy_caption(summary) == (
        "Accuracy on test images the models never saw: cpu:0 81.0%, gpu:0 80.0% (1.0 points apart)."
    )
    assert accuracy_caption(summary, runs).endswith(
        "Same model and settings, so these should match within about a point, and they do."
    )


def test_accuracies_of_different_settings_are_not_expected_to_match(store):
    record(store, SEED, test_accuracy=0.85)
    record(store, SEED.with_changes(batch_size=1024), test_accuracy=0.80)
    runs, summary, _ = summary_of(store)
    assert accuracy_caption(summary, runs) == (
        "Accuracy on test images the models never saw: batch 32 85.0%, batch 1,024 80.0% (5.0 points apart)."
    )


def test_time_outside_the_epochs_is_the_jobs_wall_time_minus_its_training(store):
    first = record(store, SEED, "cpu:0", job="a")  # 23 s of epochs
    second = record(store, SEED, "gpu:0", job="a")
    record(store, SEED, job="b")
    jobs = [
        SimpleNamespace(job_id="a", started_at=100.0, finished_at=160.0),
        SimpleNamespace(job_id="b", started_at=None, finished_at=200.0),
        None,
    ]
    assert outside_epochs_by_run(store.runs(), jobs) == {str(first): 14.0, str(second): 14.0}


# --- machines ---


def test_runs_of_one_model_on_two_machines_are_named_by_their_machine(store):
    first = record(store, SEED, hardware=node("machine-1"))
    second = record(store, SEED, hardware=node("machine-2"))
    assert named(store.runs(), [first, second]) == {first: "machine-1", second: "machine-2"}


def test_the_machine_comes_before_the_device_in_a_runs_name(store):
    cpu = record(store, SEED, "cpu:0", hardware=node("machine-1"))
    gpu = record(store, SEED, "gpu:0", hardware=node("machine-2", ("NVIDIA L4",)))
    assert named(store.runs(), [cpu, gpu]) == {cpu: "machine-1 · cpu:0", gpu: "machine-2 · gpu:0"}


def test_runs_on_one_machine_are_not_named_by_it(store):
    small = record(store, SEED, hardware=node("machine-1"))
    large = record(store, SEED.with_changes(batch_size=1024), hardware=node("machine-1"))
    assert named(store.runs(), [small, large]) == {small: "batch 32", large: "batch 1,024"}


def test_runs_stored_without_a_machine_name_are_this_servers(store):
    old = record(store, SEED, hardware={"cpu_model": "Test CPU", "gpus": []})  # stored before host names were kept
    bare = record(store, SEED)  # stored with no hardware at all
    new = record(store, SEED, hardware=node("machine-1"))
    assert named(store.runs(), [old, new]) == {old: "this server", new: "machine-1"}
    assert named(store.runs(), [old, bare]) == {old: f"cpu:0 · #{old}", bare: f"cpu:0 · #{bare}"}  # one machine


def test_two_machines_are_compared_by_default_when_they_are_the_one_setting_that_differs(store):
    first = record(store, SEED, job="a", preset="fashion-seed", hardware=node("machine-1"))
    second = record(store, SEED, job="b", preset="fashion-seed", hardware=node("machine-2"))
    comparison = choose_comparison(store.runs())
    assert (comparison.rule, comparison.run_ids) == ("one_setting", (first, second))
    assert "one setting only, machine" in comparison.reason


def test_a_cpu_and_gpu_pair_on_two_machines_says_so(store):
    record(store, SEED, "cpu:0", job="a", hardware=node("machine-1"))
    record(store, SEED, "gpu:0", job="b", hardware=node("machine-2", ("NVIDIA L4",)))
    comparison = choose_comparison(store.runs())
    assert comparison.rule == "cpu_vs_gpu"
    assert "they also differ in machine" in comparison.reason


def test_the_same_model_on_two_machines_is_expected_to_learn_alike(store):
    record(store, SEED, train_loss=[1.0, 0.8, 0.6], hardware=node("machine-1"))
    record(store, SEED, train_loss=[1.0, 0.8, 0.6], hardware=node("machine-2"))
    runs, summary, epochs = summary_of(store)
    assert "As expected: the same model and random seed learn alike" in loss_caption(epochs, runs)
    assert "Same model and settings, so these should match" in accuracy_caption(summary, runs)
    assert set(summary["series"]) == {"machine-1", "machine-2"}


def test_a_repeated_job_names_each_device_once(store):
    ids = [
        record(store, SEED.with_changes(seed=number), device=device, job="r", repeat=number)
        for number in (1, 2)
        for device in ("cpu:0", "gpu:0")
    ]

    comparison = choose_comparison(store.runs())

    assert comparison.rule == "job" and comparison.run_ids == tuple(ids)
    assert "on cpu:0 and gpu:0: its devices side by side" in comparison.reason
