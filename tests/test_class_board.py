"""Tests of lib.class_board: progress fractions, model names and today's finished jobs from stored runs."""

from __future__ import annotations

import datetime

import pandas as pd
import pytest

from lib.class_board import (
    cluster_problem_text,
    finished_jobs,
    model_text,
    progress_fraction,
    progress_text,
    start_of_today,
    where_jobs_run,
)
from lib.device_run import ProgressEvent
from lib.executor import ExecutorStatus, Machine
from lib.worker import ProgressRelay


@pytest.mark.parametrize(
    ("event", "fraction"),
    [
        (ProgressEvent(kind="device_start", device="cpu:0", epochs=4), 0.0),
        (ProgressEvent(kind="batch", device="cpu:0", epoch=2, epochs=4, batch=50, batches=100), 0.375),
        (ProgressEvent(kind="epoch", device="cpu:0", epoch=3, epochs=4), 0.75),
        (ProgressEvent(kind="device_done", device="cpu:0", epoch=4, epochs=4), 1.0),
        (ProgressEvent(kind="batch", device="cpu:0", epoch=9, epochs=4, batch=1, batches=1), 1.0),
    ],
)
def test_progress_fraction(event, fraction):
    assert progress_fraction(event) == pytest.approx(fraction)


def engine_events(epochs: int, batches: int, stop_at: tuple[int, int] | None = None) -> list[ProgressEvent]:
    """One device's events as `lib.engine` sends them (a batch event per step), cut at (epoch, batch) if given."""
    events = [ProgressEvent(kind="device_start", device="cpu:0", epochs=epochs, batches=batches)]
    finished = 0
    for epoch in range(1, epochs + 1):
        for batch in range(batches):
            if (epoch, batch) == stop_at:
                break
            events.append(ProgressEvent("batch", "cpu:0", epoch=epoch, epochs=epochs, batch=batch, batches=batches))
        else:
            events.append(ProgressEvent("epoch", "cpu:0", epoch=epoch, epochs=epochs, batch=batches, batches=batches))
            finished = epoch
            continue
        break
    events.append(ProgressEvent("device_done", "cpu:0", epoch=finished, epochs=epochs, batches=batches))
    return events


def relayed(events: list[ProgressEvent]) -> list[ProgressEvent]:
    """The events as the worker sends them on to the runner and the pages."""
    relay = ProgressRelay()
    return [relay(event) for event in events]


@pytest.mark.parametrize(
    "stop_at",
    [None, (1, 3), (2, 5), (2, 0), (1, 0)],
    ids=["to the end", "cancel in epoch 1", "cancel in epoch 2", "cancel at an epoch's end", "cancel at once"],
)
def test_progress_never_goes_backwards_through_start_batches_epochs_the_end_and_a_cancel(stop_at):
    events = relayed(engine_events(epochs=2, batches=8, stop_at=stop_at))
    fractions = [progress_fraction(event) for event in events]
    assert fractions == sorted(fractions), list(zip([event.kind for event in events], fractions, strict=True))
    if stop_at is None:
        assert fractions[-1] == 1.0
    else:  # the bar stays where the last batch left it
        assert fractions[-1] == pytest.approx(fractions[-2]) and fractions[-1] < 1.0


def test_epochs_count_from_one_and_the_end_says_done_not_batch_zero():
    events = relayed(engine_events(epochs=2, batches=8))
    texts = [progress_text(event) for event in events]
    assert texts[0] == "epoch 1/2, starting"
    assert texts[1] == "epoch 1/2, batch 0/8"
    assert "epoch 1/2 done" in texts and "epoch 2/2 done, testing" in texts
    assert texts[-1] == "all 2 epochs done"
    assert not any("epoch 0" in text for text in texts)
    assert events[0].epoch == 1  # the class board shows the event's epoch as it is
    stopped = relayed(engine_events(epochs=2, batches=8, stop_at=(2, 5)))
    assert progress_text(stopped[-1]) == "stopped after 1 of 2 epochs"
    assert progress_text(ProgressEvent(kind="device_start", device="cpu:0", epochs=3)) == "epoch 1/3, starting"


def test_model_text():
    assert model_text((512, 512), "relu") == "2 x Dense 512, relu"
    assert model_text([256, 128], "tanh") == "Dense 256 -> 128, tanh"
    assert model_text((3000, 1000), "relu") == "Dense 3,000 -> 1,000, relu"
    assert model_text((4096, 4096), "relu") == "2 x Dense 4,096, relu"


def run_row(run_id: int, job_id: str | None, device: str, total_s: float, status: str = "done", minute: int = 0):
    return {
        "id": run_id,
        "job_id": job_id,
        "created_at": pd.Timestamp(2026, 1, 5, 10, minute, tz="UTC"),
        "status": status,
        "preset": "fashion-seed" if job_id == "a" else None,
        "dataset": "fashion_mnist",
        "device": device,
        "total_s": total_s,
        "num_train": 3000,
        "epochs": 5,
        "batch_size": 32,
        "hidden_units": [64],
        "hidden_activation": "relu",
    }


def test_finished_jobs_group_runs_by_job_newest_first_with_their_speedup():
    runs = pd.DataFrame(
        [
            run_row(1, "a", "cpu:0", 20.0, minute=1),
            run_row(2, "a", "gpu:0", 2.5, minute=2),
            run_row(3, None, "cpu:0", 7.0, minute=3),  # a command-line run: a job of its own
            run_row(4, "b", "cpu:0", 9.0, status="cancelled", minute=4),  # did not finish: left out
            run_row(5, "c", "gpu:0", 1.0, minute=5),
            run_row(6, "c", "cpu:0", 4.0, status="failed", minute=6),
        ]
    )
    jobs = finished_jobs(runs)
    assert [(job.fastest.device, job.speedup) for job in jobs] == [("gpu:0", None), ("cpu:0", None), ("gpu:0", 8.0)]
    assert jobs[2].preset == "fashion-seed" and jobs[2].slowest.device == "cpu:0"
    assert jobs[1].preset is None
    assert model_text(jobs[1].hidden_units, jobs[1].hidden_activation) == "1 x Dense 64, relu"
    assert (jobs[2].samples, jobs[2].epochs) == (3000, 5)


def test_no_runs_no_jobs():
    assert finished_jobs(pd.DataFrame()) == []


def test_start_of_today_is_local_midnight():
    now = datetime.datetime(2026, 3, 4, 15, 30, tzinfo=datetime.UTC)
    midnight = start_of_today(now)
    assert (midnight.hour, midnight.minute, midnight.second) == (0, 0, 0)
    assert midnight <= now < midnight + datetime.timedelta(days=1)


CLUSTER = ExecutorStatus(
    kind="ray",
    address="http://10.0.0.5:8265",
    machines=(Machine("machine-1", "n1", "10.0.0.6", gpus=0), Machine("machine-2", "n2", "10.0.0.7", gpus=2)),
)


def test_where_jobs_run_names_this_server_or_the_clusters_machines_and_gpus():
    assert where_jobs_run(ExecutorStatus(kind="local", machines=(Machine("gpu-box"),))) == (
        "Jobs run on this server (gpu-box)."
    )
    assert where_jobs_run(CLUSTER) == (
        "Jobs run on a Ray cluster at http://10.0.0.5:8265: 2 training machines, "
        "machine-1 (no GPU), machine-2 (2 GPUs); one job per machine."
    )
    one = ExecutorStatus(kind="ray", address="http://h:8265", machines=(Machine("m", gpus=1),))
    assert "1 training machine, m (1 GPU);" in where_jobs_run(one)
    assert "no training machine has joined it yet" in where_jobs_run(ExecutorStatus(kind="ray", address="http://h"))


def test_a_silent_head_is_said_with_the_queue_kept():
    assert cluster_problem_text(CLUSTER, queued=False) == ""
    silent = ExecutorStatus(kind="ray", address="http://h", problem="The Ray cluster at http://h does not answer.")
    assert cluster_problem_text(silent, queued=False).startswith(
        "The Ray cluster at http://h does not answer. You can still press Train: your job waits in the queue"
    )
    assert cluster_problem_text(silent, queued=True).endswith(
        "Your job stays in the queue and starts when the cluster answers again."
    )
