"""Engine overhead: the engine's steady epoch against a bare `model.fit`, same process, model and data.

The bare run is `build_model` + `model.fit(verbose=0, shuffle=True)` with the smallest possible epoch clock
(a callback that reads `time.perf_counter()` at epoch begin and end). The engine run is
`lib.engine.train_on_devices` with a progress callback and a `should_stop` check attached, as the app uses
it. Both get the same float32 arrays (whole batches), the same spec and the same device. Steady epoch = the
median of epochs 2..n. Runs alternate bare, engine, engine, bare, ... so drift in machine speed cancels.

Target: engine / bare <= 1.03 on CPU.

Run:
    python benchmarks/engine_overhead.py                      # fashion-seed model, 12000 real samples, 4 epochs
    python benchmarks/engine_overhead.py --synthetic --json out.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import keras  # noqa: E402

from benchmarks.perf_report import bare_fit  # noqa: E402
from lib.datasets import DatasetUnavailableError, load_dataset, synthetic_dataset  # noqa: E402
from lib.device_run import ProgressEvent, steady_epoch_seconds  # noqa: E402
from lib.engine import prepare_data, train_on_devices  # noqa: E402
from lib.presets import get_preset  # noqa: E402


def engine_fit(spec, dataset, device, samples):
    events = []

    def keep_event(event: ProgressEvent) -> None:
        events.append(event.kind)

    run = train_on_devices(
        spec, dataset, [device], sample_limit=samples, test_limit=0, progress=keep_event, should_stop=lambda: False
    )[0]
    if run.status != "done":
        raise SystemExit(f"Engine run {run.status}: {run.error}")
    return run.epoch_s, events.count("batch")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="fashion-seed", help="model and training settings (default fashion-seed)")
    parser.add_argument("--samples", type=int, default=12_000, help="training samples (default 12000)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run, at least 3 (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind, alternating (default 2)")
    parser.add_argument("--device", default="cpu:0", help="device to train on (default cpu:0)")
    parser.add_argument("--synthetic", action="store_true", help="generated data instead of the real dataset")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.epochs < 3:
        parser.error("--epochs must be at least 3 (epoch 1 compiles; the steady state needs 2 more)")
    return args


def load(name, samples, synthetic):
    if synthetic:
        return synthetic_dataset(name, samples, 100, seed=0)
    try:
        return load_dataset(name)
    except DatasetUnavailableError as error:
        raise SystemExit(f"{error}\nOr run with --synthetic.") from error


def main(argv=None):
    args = parse_args(argv)
    spec = get_preset(args.preset).spec.with_changes(epochs=args.epochs)
    dataset = load(spec.dataset, args.samples, args.synthetic)
    data = prepare_data(spec, dataset, sample_limit=args.samples, test_limit=0)
    print(
        f"{args.preset}: {spec.hidden_units} {spec.optimizer}, batch {spec.batch_size}, {args.epochs} epochs, "
        f"{len(data.x_train)} {'synthetic' if args.synthetic else 'real'} samples on {args.device} "
        f"({keras.backend.backend()}, keras {keras.__version__})"
    )
    rows = []
    for repeat in range(args.repeats):
        order = ("bare", "engine") if repeat % 2 == 0 else ("engine", "bare")
        for mode in order:
            if mode == "bare":
                epoch_s, batch_events = bare_fit(spec, data, args.device)[0], 0
            else:
                epoch_s, batch_events = engine_fit(spec, dataset, args.device, args.samples)
            rows.append({"mode": mode, "repeat": repeat + 1, "epoch_s": epoch_s, "batch_events": batch_events})
            rows[-1]["steady_epoch_s"] = steady_epoch_seconds(epoch_s)
            print(f"  {mode:<6} run {repeat + 1}: epochs {', '.join(f'{t:.3f}' for t in epoch_s)} s")
    summary = summarise(rows, len(data.x_train))
    print_table(summary)
    if args.json:
        args.json.write_text(json.dumps(report(args, spec, len(data.x_train), rows, summary), indent=2))
        print(f"Wrote {args.json}")


def summarise(rows, num_train):
    """Median steady epoch per mode (the target's measure) and the fastest steady epoch (less load-sensitive)."""
    summary = {}
    for mode in ("bare", "engine"):
        mode_rows = [row for row in rows if row["mode"] == mode]
        steady = statistics.median(row["steady_epoch_s"] for row in mode_rows)
        fastest = min(min(row["epoch_s"][1:]) for row in mode_rows)
        summary[mode] = {"steady_epoch_s": steady, "fastest_epoch_s": fastest, "samples_per_s": num_train / steady}
    summary["ratio"] = summary["engine"]["steady_epoch_s"] / summary["bare"]["steady_epoch_s"]
    summary["fastest_ratio"] = summary["engine"]["fastest_epoch_s"] / summary["bare"]["fastest_epoch_s"]
    summary["paired_ratio"] = statistics.median(paired_ratios(rows))
    return summary


def paired_ratios(rows):
    """Engine / bare steady epoch of each repeat: the two ran back to back, so they saw the same machine load."""
    steady = {(row["mode"], row["repeat"]): row["steady_epoch_s"] for row in rows}
    repeats = sorted({row["repeat"] for row in rows})
    return [steady["engine", repeat] / steady["bare", repeat] for repeat in repeats]


def print_table(summary):
    print(f"\n{'mode':<8}{'steady epoch (s)':>18}{'fastest epoch (s)':>19}{'samples/s':>12}")
    for mode in ("bare", "engine"):
        row = summary[mode]
        print(f"{mode:<8}{row['steady_epoch_s']:>18.3f}{row['fastest_epoch_s']:>19.3f}{row['samples_per_s']:>12.0f}")
    verdict = "within" if summary["ratio"] <= 1.03 else "OVER"
    print(f"engine / bare, steady epochs  = {summary['ratio']:.3f} ({verdict} the 1.03 target)")
    print(f"engine / bare, fastest epochs = {summary['fastest_ratio']:.3f}")
    print(f"engine / bare, median of back-to-back pairs = {summary['paired_ratio']:.3f}")


def report(args, spec, num_train, rows, summary):
    return {
        "benchmark": "engine_overhead",
        "command": " ".join(sys.argv),
        "preset": args.preset,
        "spec": spec.to_dict(),
        "num_train": num_train,
        "synthetic": args.synthetic,
        "device": args.device,
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "machine": platform.processor() or platform.machine(),
        "runs": rows,
        "summary": summary,
    }


if __name__ == "__main__":
    main()
