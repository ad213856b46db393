"""The one check of a training request, before anything is queued or trained.

The job runner (every click on Train), the command-line benchmark (`lib.bench`) and the pages call
`check_request`, so no path can skip a server limit: the spec (`lib.spec.validate_spec`), the sample
counts, the devices (present on this server, each once, and a global batch that splits evenly between the
replicas of a data-parallel device such as "gpu:all"), a sweep's batch sizes and the Keras backend.

Messages are written for the person who asked: what is wrong and what to choose instead, with limits named
by their values; the environment variables that set them are for the server's owner (`lib.limits.owner_settings`).
`lib.spec.validate_spec` names fields (the CLI's flags); pages say its problems in their own words
(`lib.links.refused_spec_problems`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from lib.backend import BACKEND_PACKAGES, KNOWN_BACKENDS, BackendUnavailableError, backend_name
from lib.datasets import get_info
from lib.devices import DeviceNotFoundError, normalize_device_name
from lib.jobs import JobRequest, LimitError
from lib.limits import ServerLimits
from lib.parallel import BatchSplitError, canonical_name, is_data_parallel, per_replica_batch, replica_count
from lib.spec import validate_spec
from lib.sweep import check_batch_sizes

DEFAULT_EXAMPLE_DEVICE = "cpu:0"  # the device a message suggests when the server's list is not known
SHOWN_VALUE_CHARS = 24  # longest piece of a refused value quoted back in a message


def check_request(request: JobRequest, limits: ServerLimits, available_devices: Sequence[str] | None = None) -> int:
    """Checks a request against the server limits, as the server does before queueing it.

    Args:
        request: The request; its devices are checked as `check_devices` does.
        limits: The limits in force.
        available_devices: Normalised names of the devices jobs may use ("cpu:0", "gpu:all"); None accepts
            any well-formed name (the worker then reports a missing device) and asks the Keras backend how
            many devices a data-parallel name spans.

    Returns:
        The training samples per epoch the job will use.

    Raises:
        SpecError: The spec is invalid or over a limit.
        LimitError: Bad or too many samples, a sweep's batch sizes out of bounds, or a global batch (a sweep's
            every one) that does not split between replicas.
        DeviceNotFoundError: No device, a malformed or repeated name, or one this server lacks.
        BackendUnavailableError: The backend is unknown or not installed.
    """
    num_train = check_limits(request, limits)
    devices = check_devices(request.devices, available_devices)
    for batch_size in request.batch_sizes or (request.spec.batch_size,):
        check_batch_split(devices, batch_size, available_devices, request.backend)
    return num_train


def check_limits(request: JobRequest, limits: ServerLimits) -> int:
    """The checks of `check_request` that need no device list: the spec, the sample counts and the backend.

    A restarted server re-checks the jobs it re-queues with this, before its device list is exact.

    Returns:
        The training samples per epoch the job will use.

    Raises:
        SpecError: The spec is invalid or over a limit.
        LimitError: Bad or too many samples, a sweep's batch sizes out of bounds (`lib.sweep.check_batch_sizes`),
            a target accuracy the run cannot measure (`check_target`), or too many runs per device.
        BackendUnavailableError: The backend is unknown or not installed.
    """
    validate_spec(request.spec, limits)
    if request.is_sweep:
        check_batch_sizes(request.batch_sizes, limits.batch_size)
    check_target(request)
    check_repeats(request, limits)
    num_train = check_samples(request, limits)
    check_backend(request.backend)
    return num_train


def check_samples(request: JobRequest, limits: ServerLimits) -> int:
    """Checks the training and test sample counts of a request.

    Args:
        request: The request; its spec's dataset must be known (`validate_spec` checks that first).
        limits: The limits in force.

    Returns:
        The training samples per epoch: the sample limit, or the whole training set when it is None.

    Raises:
        LimitError: A count that is not a whole number in range, or more training samples than the server allows.
    """
    info = get_info(request.spec.dataset)
    if not _is_count(request.sample_limit, minimum=1):
        raise LimitError(
            f"The number of training samples must be a whole number of 1 or more, not {_shown(request.sample_limit)}."
        )
    if not _is_count(request.test_limit, minimum=0):
        raise LimitError(
            f"The number of test samples must be a whole number of 0 or more (0 skips the test), "
            f"not {_shown(request.test_limit)}."
        )
    num_train = min(request.sample_limit or info.num_train, info.num_train)
    if num_train > limits.samples:
        raise LimitError(
            f"{num_train:,} training samples is over this server's limit of {limits.samples:,} per job; "
            f"choose at most {limits.samples:,}."
        )
    return num_train


def check_target(request: JobRequest) -> None:
    """Checks a time-to-accuracy target: a fraction, on real test data, with `model.fit`, not in a sweep.

    Raises:
        LimitError: The target is not a number between 0 and 1, or the run cannot measure it.
    """
    target = request.target_accuracy
    if target is None:
        return
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        raise LimitError(f"The target accuracy must be between 0 and 1 (for example 0.85), not {_shown(target)}.")
    if request.synthetic:
        raise LimitError(
            "A target accuracy needs the real dataset: generated images have random labels, so no accuracy "
            "above chance is ever reached. Train on the real data, or drop the target."
        )
    if request.test_limit == 0:
        raise LimitError("A target accuracy is checked on the test samples: choose at least one test sample.")
    if request.spec.device_resident:
        raise LimitError(
            'A target accuracy is checked after each epoch of model.fit: turn off "Keep the data on the device".'
        )
    if request.is_sweep:
        raise LimitError("A batch-size sweep measures speed only: it takes no target accuracy.")


def check_repeats(request: JobRequest, limits: ServerLimits) -> None:
    """Checks the runs per device: a whole number from 1 to the server's limit, and no repeats in a sweep.

    Raises:
        LimitError: Not a whole number in range, or repeats asked of a sweep.
    """
    repeats = request.repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= limits.repeats:
        raise LimitError(
            f"The runs per device must be a whole number from 1 to {limits.repeats:,} (this server's limit), "
            f"not {_shown(repeats)}."
        )
    if repeats > 1 and request.is_sweep:
        raise LimitError("A batch-size sweep runs each point once: choose 1 run per device for it.")


def check_devices(devices: Sequence[str], available_devices: Sequence[str] | None = None) -> tuple[str, ...]:
    """Normalises the devices of a request and checks that each is present and listed once.

    Args:
        devices: Device names in any accepted spelling ("CPU", "gpu:1", "gpu:all"), in training order.
        available_devices: Normalised names of the devices jobs may use; None accepts any well-formed name.

    Returns:
        The normalised names, in order ("cpu:0", "gpu:all").

    Raises:
        DeviceNotFoundError: No device, a malformed or repeated name, or one not in `available_devices`.
    """
    if isinstance(devices, str) or not devices:
        raise DeviceNotFoundError(
            f"Choose at least one device to train on (for example {_example_device(available_devices)})."
        )
    names: list[str] = []
    for device in devices:
        name = _normalised(device)
        if name is None:
            raise DeviceNotFoundError(
                f"{_shown(device)} is not a device name; choose {_choices_text(available_devices)}."
            )
        if available_devices is not None and name not in available_devices:
            raise DeviceNotFoundError(f"{name} is not on this server; choose {_choices_text(available_devices)}.")
        if name in names:
            raise DeviceNotFoundError(f"{name} is chosen twice; choose each device once.")
        names.append(name)
    return tuple(names)


def check_batch_split(
    devices: Sequence[str],
    global_batch: int,
    available_devices: Sequence[str] | None = None,
    backend: str | None = None,
) -> None:
    """Checks that the global batch splits evenly between the replicas of every data-parallel device.

    Args:
        devices: Normalised device names; ordinary ones are skipped.
        global_batch: The spec's batch size: samples per step, all replicas together.
        available_devices: The server's device names: a data-parallel name spans the listed devices of its
            kind ("gpu:all" spans "gpu:0", "gpu:1"). None asks the Keras backend (`lib.parallel.replica_count`).
        backend: The Keras backend of the job; the server's when None (only used when `available_devices` is None).

    Raises:
        LimitError: The batch does not split evenly; the message suggests batch sizes that do.
        DataParallelUnavailableError: `available_devices` is None and the backend cannot run the name.
    """
    for device in devices:
        if not is_data_parallel(device):
            continue
        replicas = _replicas(device, available_devices, backend)
        if replicas < 2:
            continue  # not data parallel here; `check_devices` has already refused a name the server lacks
        try:
            per_replica_batch(global_batch, replicas)
        except BatchSplitError as error:
            raise LimitError(str(error)) from error


def check_backend(backend: str | None) -> None:
    """Checks that a requested Keras backend is known and installed (None: the server's default).

    Raises:
        BackendUnavailableError: The backend is unknown or its library is not installed.
    """
    if backend is None:
        return
    if backend not in KNOWN_BACKENDS:
        raise BackendUnavailableError(
            f"{_shown(backend)} is not a Keras backend this app knows; choose {', '.join(KNOWN_BACKENDS)}."
        )
    if importlib.util.find_spec(BACKEND_PACKAGES[backend]) is None:
        raise BackendUnavailableError(
            f"The {backend} backend is not installed on this server; choose another backend "
            f"(or install the {BACKEND_PACKAGES[backend]} package)."
        )


def _normalised(device: object) -> str | None:
    if not isinstance(device, str):
        return None
    return canonical_name(device) if is_data_parallel(device) else normalize_device_name(device)


def _replicas(device: str, available_devices: Sequence[str] | None, backend: str | None) -> int:
    if available_devices is None:
        return replica_count(device, backend or backend_name())
    kind = device.split(":")[0]
    return sum(1 for name in available_devices if name.startswith(f"{kind}:") and not is_data_parallel(name))


def _is_count(value: object, *, minimum: int) -> bool:
    """True for None (the whole set) or a whole number (not a bool) of at least `minimum`."""
    if value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _example_device(available_devices: Sequence[str] | None) -> str:
    return available_devices[0] if available_devices else DEFAULT_EXAMPLE_DEVICE


def _choices_text(available_devices: Sequence[str] | None) -> str:
    if not available_devices:
        return f"a name such as {DEFAULT_EXAMPLE_DEVICE}"
    return "one of " + ", ".join(available_devices)


def _shown(value: object) -> str:
    """A refused value as plain text for a message: one line, cut short, quoted."""
    text = " ".join(str(value).split())
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[: SHOWN_VALUE_CHARS - 1] + "\u2026"
    return f"\u201c{text}\u201d"
