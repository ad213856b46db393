"""Tests of the job request's plain-data forms and the stored job record."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lib.jobs import JobRecord, JobRequest, JobState
from lib.spec import ModelSpec

REQUEST = JobRequest(
    spec=ModelSpec(hidden_units=(64, 32), batch_size=128, epochs=3, device_resident=True),
    devices=("cpu:0", "gpu:all"),
    sample_limit=2048,
    test_limit=500,
    synthetic=True,
    backend="jax",
)


def test_to_dict_round_trip_keeps_every_field_including_the_backend():
    data = json.loads(json.dumps(REQUEST.to_dict()))
    assert data["backend"] == "jax"
    assert JobRequest.from_dict(data) == REQUEST


@pytest.mark.parametrize("backend", [None, "tensorflow"])
def test_round_trip_with_defaults(backend):
    request = JobRequest(spec=ModelSpec(), devices=("cpu:0",), backend=backend)
    assert JobRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_worker_dict_still_leaves_the_backend_out():
    data = REQUEST.to_worker_dict()
    assert "backend" not in data
    assert JobRequest.from_worker_dict(data) == dataclasses.replace(REQUEST, backend=None)


def test_from_dict_without_backend_gives_none():
    assert JobRequest.from_dict(REQUEST.to_worker_dict()).backend is None


def test_job_record_is_frozen_with_sensible_defaults():
    record = JobRecord(
        job_id="0123456789ab",
        seq=0,
        submitted_at=1.5,
        state=JobState.QUEUED,
        client="10.0.0.7",
        owners=("session-a",),
        preset=None,
        request=REQUEST,
    )
    assert (record.started_at, record.finished_at, record.error) == (None, None, "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.state = JobState.RUNNING  # type: ignore[misc]
