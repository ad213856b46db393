"""`python -m lib.fetch_data`: one line per dataset, Keras cache seeded, always exit code 0."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys

import pytest

from lib import fetch_data
from lib.datasets import FASHION_MNIST_FILES
from tests.conftest import REPO_ROOT


@pytest.fixture
def fake_debian_fashion(tmp_path):
    """A tiny Fashion-MNIST (5 train, 2 test images) in the original .gz files."""
    folder = tmp_path / "debian-fashion"
    folder.mkdir()
    for split, count in (("train", 5), ("t10k", 2)):
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as file:
            file.write(struct.pack(">IIII", 2051, count, 28, 28) + bytes(count * 784))
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as file:
            file.write(struct.pack(">II", 2049, count) + bytes(range(count)))
    return folder


@pytest.fixture
def fetch_env(tmp_path, monkeypatch, keras_home, fake_debian_fashion) -> dict:
    """Keras home, data folder and Debian folder all in tmp_path, for this process and its children."""
    env = {
        "KERAS_HOME": str(keras_home),
        "GPUX_DATA_DIR": str(tmp_path / "data"),
        "GPUX_FASHION_MNIST_DIR": str(fake_debian_fashion),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_offline_run_seeds_fashion_and_explains_cifar(fetch_env, keras_home, capsys, network_attempts):
    assert fetch_data.main(["--offline"]) == 0

    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("fashion_mnist: ready (Debian package dataset-fashion-mnist")
    assert lines[1].startswith("cifar10: not available: CIFAR-10 is not available offline.")
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in lines[1]
    cache = keras_home / "datasets" / "fashion-mnist"
    assert all((cache / name).is_symlink() for name in FASHION_MNIST_FILES)
    assert network_attempts == []


def test_second_run_finds_the_seeded_cache(fetch_env, keras_home, capsys):
    fetch_data.main(["--offline"])
    capsys.readouterr()

    assert fetch_data.main(["--offline"]) == 0

    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line.startswith("fashion_mnist: ready (Keras cache (") and "linked to" in first_line


def test_online_check_decides_whether_downloads_are_allowed(fetch_env, keras_home, monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(fetch_data, "host_reachable", lambda host, timeout_s: asked.append(host) or False)

    assert fetch_data.main([]) == 0

    assert asked == ["storage.googleapis.com", "www.cs.toronto.edu"]
    assert "cifar10: not available" in capsys.readouterr().out


def test_unreachable_host_is_reported_as_offline(network_attempts):
    assert fetch_data.host_reachable("storage.googleapis.com", timeout_s=0.1) is False
    assert network_attempts  # the check tried, and the test's network block refused it


def test_unexpected_errors_still_exit_zero(fetch_env, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise PermissionError("cache folder is read-only")

    monkeypatch.setattr(fetch_data, "prepare_dataset", broken)

    assert fetch_data.main(["--offline"]) == 0

    out = capsys.readouterr().out
    assert "fashion_mnist: not available (PermissionError: cache folder is read-only)" in out
    assert out.count("not available") == 2


def test_bad_arguments_exit_zero(capsys):
    assert fetch_data.main(["--no-such-option"]) == 0
    assert "nothing done" in capsys.readouterr().out


def test_module_runs_as_a_script_and_exits_zero(fetch_env, keras_home):
    result = subprocess.run(
        [sys.executable, "-m", "lib.fetch_data", "--offline"],
        cwd=REPO_ROOT,
        env={**os.environ, **fetch_env},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["fashion_mnist", "cifar10"]
    assert "ready" in lines[0] and "not available" in lines[1]
    assert (keras_home / "datasets" / "fashion-mnist" / FASHION_MNIST_FILES[0]).is_symlink()
