"""The device's ceilings: FLOP/s of one large matrix product per precision, per device and library.

Times n x n products (n = 4096 on CPUs, 8192 on GPUs unless --n) through each library's own API with
`lib.ceilings.measure_ceilings`: warm-up products, the device synchronised before the clock is read,
the median of the repeats. Precisions: strict float32 and bfloat16 everywhere, TF32 on GPUs. By
default it measures every device of the active Keras backend, through that backend's library and
through PyTorch when PyTorch is installed (the peer the anchors were measured with). TensorFlow is
only imported when it is the active backend or named in --backends.

Run:
    python benchmarks/ceilings.py                                   # active backend (+ torch), all devices
    KERAS_BACKEND=jax python benchmarks/ceilings.py --json out/ceilings.json
    python benchmarks/ceilings.py --devices cpu:0 --backends tensorflow --n 2048
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks.perf_report import csv_list, describe_record, log, print_table, run_record, write_json  # noqa: E402
from lib.backend import BackendUnavailableError, backend_name  # noqa: E402
from lib.ceilings import CeilingError, measure_ceilings  # noqa: E402

COLUMNS = (
    ("backend", "library", ""),
    ("device", "device", ""),
    ("precision", "precision", ""),
    ("n", "n", "d"),
    ("ms", "ms per product", ".2f"),
    ("tflops", "TFLOP/s", ".4g"),
    ("note", "note", ""),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=csv_list, help="devices such as cpu:0,gpu:0 (default: all present)")
    parser.add_argument(
        "--backends", type=csv_list, help="libraries: jax, tensorflow, torch (default: active backend, plus torch)"
    )
    parser.add_argument("--n", type=int, help="matrix size (default 4096 on CPUs, 8192 on GPUs)")
    parser.add_argument("--repeats", type=int, help="timed products per precision (default 3 on CPUs, 10 on GPUs)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def default_backends() -> list[str]:
    """The active backend, plus PyTorch when it is installed (the peers' library)."""
    active = backend_name()
    extra = ["torch"] if active != "torch" and importlib.util.find_spec("torch") is not None else []
    return [active, *extra]


def devices_for(backend: str, wanted: list[str] | None) -> list[str]:
    from lib.devices import list_devices

    present = [device.name for device in list_devices(backend)]
    return [d for d in wanted if d in present] if wanted else present


def main(argv=None) -> int:
    args = parse_args(argv)
    record = run_record("ceilings")
    print(describe_record(record), flush=True)
    rows, ceilings = [], []
    for backend in args.backends or default_backends():
        try:
            devices = devices_for(backend, args.devices)
        except BackendUnavailableError as error:
            log(f"{backend}: not available ({error})")
            continue
        for device in devices:
            log(f"{backend} {device}: timing products...")
            started = time.perf_counter()
            try:
                measured = measure_ceilings(device, args.n, backend=backend, repeats=args.repeats)
            except CeilingError as error:
                log(f"{backend} {device}: {error}")
                continue
            log(f"{backend} {device}: done in {time.perf_counter() - started:.1f} s")
            ceilings.extend(measured)
            rows.extend(
                {**c.to_dict(), "ms": c.seconds * 1e3, "tflops": c.flops_per_s / 1e12, "note": c.note} for c in measured
            )
    print()
    print_table(rows, COLUMNS)
    write_json(args.json, {**record, "ceilings": [c.to_dict() for c in ceilings]})
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
