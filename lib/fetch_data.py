"""Makes the datasets loadable by the Keras loaders before the app starts; `make run` calls it.

Run with `python -m lib.fetch_data` (options: `--offline`, `--data-dir DIR`, `--timeout SECONDS`).

For each dataset it seeds the Keras cache from a local copy (data folder, Debian package) when there is
one; otherwise, when the download host answers, it lets Keras download the dataset. It prints one line
per dataset and always exits 0: a missing dataset must never stop the app from starting (the Datasets
page explains the fix). Quick when the cache is already seeded: files are linked, not read.
"""

from __future__ import annotations

import argparse
import socket
import sys
import urllib.parse
from collections.abc import Sequence

from lib.datasets import (
    CIFAR10_URL,
    DATASET_NAMES,
    DatasetUnavailableError,
    prepare_dataset,
)

DOWNLOAD_HOSTS = {
    "fashion_mnist": "storage.googleapis.com",  # keras.datasets.fashion_mnist's origin
    "cifar10": urllib.parse.urlsplit(CIFAR10_URL).hostname or "www.cs.toronto.edu",
}
DEFAULT_TIMEOUT_S = 5.0  # seconds to wait for a download host, and for each network read


def host_reachable(host: str, timeout_s: float) -> bool:
    """Returns whether a TCP connection to `host` on port 443 opens within `timeout_s` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def fetch_one(name: str, data_dir: str | None, offline: bool, timeout_s: float) -> str:
    """Makes one dataset loadable if possible and returns the line that reports it.

    Args:
        name: One of `DATASET_NAMES`.
        data_dir: Data folder; None uses `$GPUX_DATA_DIR`, else `data/` in the repository.
        offline: Never try a download.
        timeout_s: Seconds to wait for the download host.
    """
    allow_download = not offline and host_reachable(DOWNLOAD_HOSTS[name], timeout_s)
    try:
        source = prepare_dataset(name, data_dir=data_dir, allow_download=allow_download)
    except DatasetUnavailableError as error:
        return f"{name}: not available: {error}"
    except Exception as error:  # this script must never stop `make run`
        return f"{name}: not available ({type(error).__name__}: {error})"
    return f"{name}: ready ({source.description})"


def main(argv: Sequence[str] | None = None) -> int:
    """Reports (and where possible prepares) every dataset; always returns 0."""
    parser = argparse.ArgumentParser(description="Make the datasets loadable offline by the Keras loaders.")
    parser.add_argument("--offline", action="store_true", help="never try to download")
    parser.add_argument("--data-dir", default=None, help="folder with the original dataset files")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="network timeout in seconds")
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        print("fetch_data: bad arguments; nothing done (the app still starts).")
        return 0
    # A short socket timeout keeps a stalled download from hanging `make run`.
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(args.timeout)
    try:
        for name in DATASET_NAMES:
            print(fetch_one(name, args.data_dir, args.offline, args.timeout), flush=True)
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
