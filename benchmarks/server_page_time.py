"""How long the server takes to answer each page, idle and while a job trains, with no browser on this machine.

A browser on the server's own 2 cores (benchmarks/responsiveness.py) measures the server and the browser
together; in a class the browsers run on the students' machines. This script speaks Streamlit's own
websocket protocol instead (`/_stcore/stream`, the protobuf messages the browser sends and receives): each
visit is a new session asking for one page, timed from connecting to

    content   the first element of the page (its heading follows the sidebar within a few messages)
    finished  the server's "script finished" message: every element of the page has been sent

Passes alternate, --repeats times: the idle server, then the server while a training process runs beside it
(`python -m lib.bench`, at the workers' niceness `GPUX_WORKER_NICE`, default 10: the same training code and
priority as a job's worker; it is started before and ended after each training pass). A first unrecorded pass
warms every page. Run from the repository root:

    .venv/bin/python benchmarks/server_page_time.py --repeats 5 \
        --json benchmarks/results/cpu-class/server_page_time.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.class_load import machine_facts, positive_int, streamlit_server, summarize  # noqa: E402
from benchmarks.perf_report import log, print_table, write_json  # noqa: E402
from benchmarks.responsiveness import router_pages, target_s  # noqa: E402

ROUTER = REPO_ROOT / "streamlit_app.py"
# Two Dense(256) layers on Fashion-MNIST for many epochs: it trains throughout a pass and is ended after it.
TRAINING_COMMAND = ("-m", "lib.bench", "--hidden-units", "256,256", "--batch-size", "64", "--epochs", "50")
VISIT_TIMEOUT_S = 60.0


async def visit(url: str, page: str) -> dict[str, float]:
    """One new session asks for `page`; returns seconds to its first element and to the script's end."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    started = time.monotonic()
    first: float | None = None
    async with websockets.connect(f"ws{url.removeprefix('http')}/_stcore/stream", subprotocols=["streamlit"]) as ws:
        request = BackMsg()
        request.rerun_script.page_name = "" if page == "home" else page
        await ws.send(request.SerializeToString())
        while True:
            message = ForwardMsg()
            message.ParseFromString(await asyncio.wait_for(ws.recv(), VISIT_TIMEOUT_S))
            kind = message.WhichOneof("type")
            if kind == "delta" and first is None:
                first = time.monotonic() - started
            if kind == "script_finished":
                return {"content_s": first or 0.0, "finished_s": time.monotonic() - started}


def start_training() -> subprocess.Popen:
    """The training process beside the server, at the workers' niceness."""
    nice = int(os.environ.get("GPUX_WORKER_NICE", "10"))
    return subprocess.Popen(
        ["nice", "-n", str(nice), sys.executable, *TRAINING_COMMAND],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def cores_used(process: subprocess.Popen, interval_s: float = 1.0) -> float:
    """The training process's CPU use over `interval_s`, in cores (shows that it really trains)."""
    import psutil

    trainer = psutil.Process(process.pid)
    before = sum(trainer.cpu_times()[:2])
    time.sleep(interval_s)
    return (sum(trainer.cpu_times()[:2]) - before) / interval_s


async def run_passes(
    url: str, pages: Sequence[str], repeats: int, warm_s: float
) -> tuple[list[dict[str, Any]], list[float]]:
    """The warm-up visits, then idle and training passes in turn; returns the visits and the trainer's cores."""
    visits, trainer_cores = [], []
    for page in pages:
        await visit(url, page)
    for repeat in range(repeats):
        for condition in ("idle", "training"):
            trainer = start_training() if condition == "training" else None
            if trainer:
                time.sleep(warm_s)  # past its imports and data loading: training
            try:
                for page in pages:
                    timing = await visit(url, page)
                    visits.append({"page": page, "condition": condition, "repeat": repeat, **timing})
                    log(f"  {condition} {page}: {timing['content_s']:.3f} s / {timing['finished_s']:.3f} s")
                if trainer:
                    assert trainer.poll() is None, "the training process ended before the pass did"
                    trainer_cores.append(cores_used(trainer))
            finally:
                if trainer:
                    trainer.terminate()
                    trainer.wait()
    return visits, trainer_cores


def summarize_pages(visits: Sequence[dict[str, Any]], pages: Sequence[str]) -> list[dict[str, Any]]:
    """Per page: medians idle and while training, the target max(3 s, 1.5 x idle) and whether it is met."""
    rows = []
    for page in pages:
        row: dict[str, Any] = {"page": page}
        for condition in ("idle", "training"):
            for measure in ("content_s", "finished_s"):
                values = [v[measure] for v in visits if v["page"] == page and v["condition"] == condition]
                row[f"{condition}_{measure}"] = summarize(values)["median"]
        row["target_finished_s"] = target_s(row["idle_finished_s"])
        row["meets"] = row["training_finished_s"] <= row["target_finished_s"]
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the passes, prints the table, writes --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--warm-s", type=float, default=25.0, help="seconds the trainer gets before a pass")
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args(argv)
    pages = router_pages(ROUTER.read_text())
    folder = pathlib.Path(tempfile.mkdtemp(prefix="server-page-time-"))
    with streamlit_server(folder) as server:
        visits, trainer_cores = asyncio.run(run_passes(server.url, pages, args.repeats, args.warm_s))
    rows = summarize_pages(visits, pages)
    columns = [("page", "page", "")] + [
        (f"{c}_{m}", f"{c} {m[:-2]} s", ".3f") for c in ("idle", "training") for m in ("content_s", "finished_s")
    ]
    print_table(rows, [*columns, ("target_finished_s", "target s", ".2f"), ("meets", "met", "")])
    result = {"benchmark": "server_page_time", "command": " ".join(sys.argv), "machine": machine_facts()}
    print(f"The training process used {', '.join(f'{c:.2f}' for c in trainer_cores)} cores at the end of each pass.")
    write_json(args.json, {**result, "trainer_cores": trainer_cores, "pages": rows, "visits": visits})
    return 0


if __name__ == "__main__":
    sys.exit(main())
