"""Dataset registry, offline-first loading through the Keras loaders, synthetic data."""

from __future__ import annotations

import gzip
import hashlib
import pathlib
import pickle
import struct
import tarfile

import keras
import numpy as np
import pytest

from lib import datasets
from lib.datasets import (
    DATASET_NAMES,
    DATASETS,
    Dataset,
    DatasetUnavailableError,
    UnknownDatasetError,
    available_sources,
    get_info,
    load_dataset,
    synthetic_dataset,
)

FAKE_FASHION_TRAIN = 120
FAKE_FASHION_TEST = 30
FAKE_CIFAR_TEST = 100
CIFAR_BATCH_ROWS = 10_000  # the Keras loader expects exactly this many rows per training batch


# --- Fake data in the original formats ---


def fake_fashion_arrays(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(num, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=num, dtype=np.uint8)


def write_idx_gz(folder: pathlib.Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Writes images and labels as the original idx3/idx1 gzip files."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as file:
        file.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as file:
        file.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


@pytest.fixture
def fake_fashion(tmp_path) -> dict:
    """A tiny Fashion-MNIST in the original .gz format, in its own folder."""
    x_train, y_train = fake_fashion_arrays(FAKE_FASHION_TRAIN, seed=1)
    x_test, y_test = fake_fashion_arrays(FAKE_FASHION_TEST, seed=2)
    folder = tmp_path / "fake-fashion"
    write_idx_gz(folder, "train", x_train, y_train)
    write_idx_gz(folder, "t10k", x_test, y_test)
    return {"folder": folder, "x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture
def offline(tmp_path, monkeypatch, keras_home, network_attempts) -> dict:
    """Empty Keras cache, empty data folder, no Debian files, no network."""
    data_dir = tmp_path / "data"
    debian_dir = tmp_path / "no-debian-package"
    data_dir.mkdir()
    monkeypatch.setenv("GPUX_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(debian_dir))
    return {
        "data_dir": data_dir,
        "debian_dir": debian_dir,
        "cache": keras_home / "datasets",
        "network_attempts": network_attempts,
    }


@pytest.fixture
def keras_loader_calls(monkeypatch) -> list[str]:
    """Records each call of the public Keras dataset loaders (which still run for real)."""
    calls: list[str] = []
    for name in DATASET_NAMES:
        module = getattr(keras.datasets, name)
        original = module.load_data

        def spy(original=original, name=name):
            calls.append(name)
            return original()

        monkeypatch.setattr(module, "load_data", spy)
    return calls


def cifar_image_rows(labels: np.ndarray) -> np.ndarray:
    """CIFAR rows (n, 3072: red plane, green plane, blue plane) that encode their label, compressible."""
    rows = np.empty((len(labels), 3, 1024), dtype=np.uint8)
    rows[:, 0, :] = (labels * 25)[:, None]  # red = 25 x label
    rows[:, 1, :] = 100
    rows[:, 2, :] = 200
    return rows.reshape(len(labels), 3072)


def cifar_labels(count: int, offset: int) -> np.ndarray:
    return ((np.arange(count) + offset) * 7 % 10).astype(np.uint8)


def write_cifar_batch(path: pathlib.Path, labels: np.ndarray, name: str) -> None:
    """One batch file in the original format: a pickled dict with bytes keys and a uint8 (n, 3072) array.

    Protocol 4 pickles the array with the same globals as the original Python 2 files (protocol 2 in
    Python 3 would route bytes through `_codecs.encode`, which the Keras unpickler refuses).
    """
    batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": cifar_image_rows(labels)}
    with open(path, "wb") as file:
        pickle.dump(batch, file, protocol=4)


def write_fake_cifar(root: pathlib.Path) -> dict:
    """Writes a CIFAR-10 in the original format (full-size training batches, a small test batch) under `root`.

    Returns:
        `folder` (the extracted cifar-10-batches-py), `archive` (cifar-10-python.tar.gz of it), its `sha256`,
        and the labels written, `y_train` and `y_test`.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    train_labels = cifar_labels(5 * CIFAR_BATCH_ROWS, offset=0)
    for batch in range(5):
        rows = train_labels[batch * CIFAR_BATCH_ROWS : (batch + 1) * CIFAR_BATCH_ROWS]
        write_cifar_batch(folder / f"data_batch_{batch + 1}", rows, f"training batch {batch + 1} of 5")
    test_labels = cifar_labels(FAKE_CIFAR_TEST, offset=3)
    write_cifar_batch(folder / "test_batch", test_labels, "testing batch 1 of 1")
    meta = {b"label_names": [n.encode() for n in get_info("cifar10").class_names], b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump(meta, file, protocol=4)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    return {"folder": folder, "archive": archive, "sha256": sha256, "y_train": train_labels, "y_test": test_labels}


@pytest.fixture(scope="module")
def fake_cifar(tmp_path_factory) -> dict:
    """A fake CIFAR-10 in the original format, as folder and archive (see write_fake_cifar)."""
    return write_fake_cifar(tmp_path_factory.mktemp("fake-cifar"))


def assert_fake_cifar_loaded(dataset: Dataset, fake: dict) -> None:
    assert dataset.x_train.shape == (50_000, 32, 32, 3)
    assert dataset.x_test.shape == (FAKE_CIFAR_TEST, 32, 32, 3)
    assert dataset.y_train.shape == (50_000,)
    assert dataset.y_test.shape == (FAKE_CIFAR_TEST,)
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        assert array.dtype == np.uint8
    np.testing.assert_array_equal(dataset.y_train, fake["y_train"])
    np.testing.assert_array_equal(dataset.y_test, fake["y_test"])
    # Channels last, and each image's red channel encodes its label (checks the plane -> channel transpose).
    np.testing.assert_array_equal(dataset.x_train[:, 0, 0, 0], fake["y_train"] * 25)
    np.testing.assert_array_equal(dataset.x_test[:, 31, 31, 0], fake["y_test"] * 25)
    assert (dataset.x_train[:50, :, :, 1] == 100).all() and (dataset.x_train[:50, :, :, 2] == 200).all()
    assert dataset.synthetic is False


def link_folder_with(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """A copy of a CIFAR batches folder made of links, so one file can be replaced cheaply."""
    target.mkdir(parents=True)
    for file in source.iterdir():
        (target / file.name).symlink_to(file)
    return target


# --- Registry ---


def test_registry_describes_both_datasets():
    fashion, cifar = get_info("fashion_mnist"), get_info("cifar10")
    assert set(DATASETS) == set(DATASET_NAMES) == {"fashion_mnist", "cifar10"}
    assert (fashion.title, fashion.image_shape, fashion.num_train, fashion.num_test) == (
        "Fashion-MNIST",
        (28, 28),
        60_000,
        10_000,
    )
    assert (cifar.title, cifar.image_shape, cifar.num_train, cifar.num_test) == (
        "CIFAR-10",
        (32, 32, 3),
        50_000,
        10_000,
    )
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert cifar.class_names[0] == "airplane" and cifar.class_names[9] == "truck"
    assert (fashion.num_classes, cifar.num_classes) == (10, 10)
    assert (fashion.input_size, cifar.input_size) == (784, 3072)
    assert (fashion.is_rgb, cifar.is_rgb) == (False, True)


def test_unknown_dataset_names_the_valid_ones():
    with pytest.raises(UnknownDatasetError, match="'fashion_mnist', 'cifar10'"):
        get_info("mnist")
    with pytest.raises(ValueError):
        load_dataset("imagenet")


# --- Fashion-MNIST ---


def test_fashion_from_debian_folder_goes_through_keras_loader(offline, monkeypatch, fake_fashion, keras_loader_calls):
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(fake_fashion["folder"]))

    dataset = load_dataset("fashion_mnist")

    assert keras_loader_calls == ["fashion_mnist"]
    for split in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(dataset, split), fake_fashion[split])
        assert getattr(dataset, split).dtype == np.uint8
    assert dataset.source.startswith("Debian package dataset-fashion-mnist")
    assert "keras.datasets.fashion_mnist.load_data()" in dataset.source
    # The Keras cache now holds links to the files, where the Keras loader looks for them.
    cached = offline["cache"] / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    assert cached.is_symlink() and cached.resolve() == (fake_fashion["folder"] / cached.name).resolve()
    assert offline["network_attempts"] == []


def test_fashion_cache_is_used_first_once_seeded(offline, monkeypatch, fake_fashion):
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(fake_fashion["folder"]))
    assert [s.kind for s in available_sources("fashion_mnist")] == ["debian"]

    load_dataset("fashion_mnist")

    assert [s.kind for s in available_sources("fashion_mnist")] == ["keras_cache", "debian"]
    second = load_dataset("fashion_mnist")
    assert second.source.startswith("Keras cache") and "linked to" in second.source
    assert len(second.x_train) == FAKE_FASHION_TRAIN


def test_fashion_data_dir_comes_before_debian_package(offline, monkeypatch, fake_fashion):
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(fake_fashion["folder"]))
    x_train, y_train = fake_fashion_arrays(50, seed=7)
    x_test, y_test = fake_fashion_arrays(10, seed=8)
    write_idx_gz(offline["data_dir"] / "fashion-mnist", "train", x_train, y_train)
    write_idx_gz(offline["data_dir"] / "fashion-mnist", "t10k", x_test, y_test)

    dataset = load_dataset("fashion_mnist")

    assert dataset.source.startswith("data folder")
    np.testing.assert_array_equal(dataset.x_train, x_train)
    np.testing.assert_array_equal(dataset.y_test, y_test)


def test_fashion_explicit_data_dir_argument(offline, fake_fashion, tmp_path):
    data_dir = tmp_path / "elsewhere"
    (data_dir / "fashion-mnist").mkdir(parents=True)
    for file in fake_fashion["folder"].iterdir():
        (data_dir / "fashion-mnist" / file.name).write_bytes(file.read_bytes())

    dataset = load_dataset("fashion_mnist", data_dir=data_dir)

    assert str(data_dir / "fashion-mnist") in dataset.source
    assert dataset.x_test.shape == (FAKE_FASHION_TEST, 28, 28)


def test_real_fashion_mnist_from_debian_package(keras_home, monkeypatch, tmp_path, network_attempts):
    monkeypatch.setenv("GPUX_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("GPUX_FASHION_MNIST_DIR", raising=False)

    dataset = load_dataset("fashion_mnist")

    assert dataset.x_train.shape == (60_000, 28, 28) and dataset.x_test.shape == (10_000, 28, 28)
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.uint8
    assert dataset.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert np.bincount(dataset.y_train).tolist() == [6000] * 10
    assert np.bincount(dataset.y_test).tolist() == [1000] * 10
    assert "/usr/share/datasets/fashion-mnist" in dataset.source
    assert network_attempts == []


def test_missing_fashion_says_the_fix_without_network(offline):
    with pytest.raises(DatasetUnavailableError) as raised:
        load_dataset("fashion_mnist")

    message = str(raised.value)
    assert "not available offline" in message
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert str(offline["data_dir"] / "fashion-mnist") in message
    assert "train-images-idx3-ubyte.gz" in message
    assert raised.value.fix and raised.value.fix in message
    assert offline["network_attempts"] == []
    assert not (offline["cache"] / "fashion-mnist").exists()


def test_corrupt_fashion_gzip_names_the_files(offline, monkeypatch, fake_fashion):
    (fake_fashion["folder"] / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip data")
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(fake_fashion["folder"]))

    with pytest.raises(DatasetUnavailableError) as raised:
        load_dataset("fashion_mnist")

    message = str(raised.value)
    assert "could not be read" in message and "damaged" in message
    assert str(fake_fashion["folder"]) in message
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert offline["network_attempts"] == []


def test_fashion_with_mismatched_sizes_is_rejected(offline, monkeypatch, fake_fashion):
    # 120 training images but 119 labels: the files do not belong together.
    x_train, _ = fake_fashion_arrays(FAKE_FASHION_TRAIN, seed=1)
    _, short_labels = fake_fashion_arrays(FAKE_FASHION_TRAIN - 1, seed=3)
    write_idx_gz(fake_fashion["folder"], "train", x_train, short_labels)
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(fake_fashion["folder"]))

    with pytest.raises(DatasetUnavailableError, match="could not be read"):
        load_dataset("fashion_mnist")


def test_fashion_with_out_of_range_labels_is_rejected(offline, monkeypatch, fake_fashion):
    labels = np.full(FAKE_FASHION_TEST, 12, dtype=np.uint8)
    write_idx_gz(fake_fashion["folder"], "t10k", fake_fashion["x_test"], labels)
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(fake_fashion["folder"]))

    with pytest.raises(DatasetUnavailableError, match="labels span 12..12"):
        load_dataset("fashion_mnist")


def test_failed_download_becomes_unavailable_error(offline):
    with pytest.raises(DatasetUnavailableError) as raised:
        load_dataset("fashion_mnist", allow_download=True)

    assert "Downloading Fashion-MNIST with Keras failed" in str(raised.value)
    assert "sudo apt-get install dataset-fashion-mnist" in str(raised.value)
    # The download was really attempted (and refused by the test's network block).
    assert offline["network_attempts"]


def test_prepare_seeds_the_cache_without_loading(offline, monkeypatch, fake_fashion, keras_loader_calls):
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(fake_fashion["folder"]))

    source = datasets.prepare_dataset("fashion_mnist")

    assert source.kind == "debian"
    assert keras_loader_calls == []
    assert all((offline["cache"] / "fashion-mnist" / f).is_file() for f in datasets.FASHION_MNIST_FILES)


# --- CIFAR-10 ---


@pytest.mark.parametrize("copy", ["archive", "folder"])
def test_cifar_from_data_dir_through_keras_loader(offline, fake_cifar, keras_loader_calls, copy):
    if copy == "archive":
        (offline["data_dir"] / "cifar-10-python.tar.gz").symlink_to(fake_cifar["archive"])
    else:
        (offline["data_dir"] / "cifar-10-batches-py").symlink_to(fake_cifar["folder"])

    dataset = load_dataset("cifar10")

    assert keras_loader_calls == ["cifar10"]
    assert_fake_cifar_loaded(dataset, fake_cifar)
    assert dataset.source.startswith("data folder")
    assert "keras.datasets.cifar10.load_data()" in dataset.source
    assert offline["network_attempts"] == []


def test_cifar_archive_is_extracted_into_the_keras_cache_once(offline, fake_cifar):
    (offline["data_dir"] / "cifar-10-python.tar.gz").symlink_to(fake_cifar["archive"])
    load_dataset("cifar10")

    extracted = offline["cache"] / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    assert (extracted / "data_batch_5").is_file()
    assert [s.kind for s in available_sources("cifar10")] == ["keras_cache", "data_dir"]
    second = load_dataset("cifar10")
    assert second.source.startswith(f"Keras cache ({extracted}")
    assert_fake_cifar_loaded(second, fake_cifar)


def test_official_cifar_archive_goes_through_the_unmodified_keras_loader(offline, fake_cifar, monkeypatch):
    # Our archive cannot have the official SHA-256, so both hash checks (ours and Keras') are told to expect
    # its hash instead; everything else (cache layout, get_file, extraction, parsing) is the real Keras path.
    from keras.src.utils import file_utils

    def keras_hash_check(path, file_hash, **_):
        return file_hash == "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce" and (
            datasets._sha256(pathlib.Path(path)) == fake_cifar["sha256"]
        )

    monkeypatch.setattr(datasets, "CIFAR10_ARCHIVE_SHA256", fake_cifar["sha256"])
    monkeypatch.setattr(file_utils, "validate_file", keras_hash_check)
    (offline["data_dir"] / "cifar-10-python.tar.gz").symlink_to(fake_cifar["archive"])

    dataset = load_dataset("cifar10")

    assert_fake_cifar_loaded(dataset, fake_cifar)
    cached_archive = offline["cache"] / "cifar-10-batches-py-target_archive"
    assert cached_archive.is_symlink() and cached_archive.resolve() == fake_cifar["archive"].resolve()
    assert (offline["cache"] / "cifar-10-batches-py-target" / "cifar-10-batches-py" / "test_batch").is_file()
    assert offline["network_attempts"] == []


def test_missing_cifar_says_where_to_put_the_archive(offline):
    with pytest.raises(DatasetUnavailableError) as raised:
        load_dataset("cifar10")

    message = str(raised.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert str(offline["data_dir"] / "cifar-10-python.tar.gz") in message
    assert str(offline["cache"] / "cifar-10-batches-py-target_archive") in message
    assert offline["network_attempts"] == []


def test_corrupt_cifar_archive_names_the_file(offline):
    archive = offline["data_dir"] / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + b"truncated download" * 100)

    with pytest.raises(DatasetUnavailableError) as raised:
        load_dataset("cifar10")

    assert str(archive) in str(raised.value) and "could not be read" in str(raised.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in str(raised.value)
    assert not (offline["cache"] / "cifar-10-batches-py-target" / "cifar-10-batches-py").exists()
    assert offline["network_attempts"] == []


def test_cifar_bad_pickle_is_rejected(offline, fake_cifar):
    folder = link_folder_with(fake_cifar["folder"], offline["data_dir"] / "cifar-10-batches-py")
    (folder / "data_batch_3").unlink()
    (folder / "data_batch_3").write_bytes(b"not a pickle")

    with pytest.raises(DatasetUnavailableError, match="could not be read"):
        load_dataset("cifar10")


def test_cifar_batch_of_wrong_size_is_rejected(offline, fake_cifar):
    folder = link_folder_with(fake_cifar["folder"], offline["data_dir"] / "cifar-10-batches-py")
    (folder / "data_batch_2").unlink()
    write_cifar_batch(folder / "data_batch_2", cifar_labels(5_000, offset=0), "short batch")

    with pytest.raises(DatasetUnavailableError) as raised:
        load_dataset("cifar10")

    assert str(folder) in str(raised.value)


def test_incomplete_cifar_folder_is_not_a_source(offline, fake_cifar):
    folder = link_folder_with(fake_cifar["folder"], offline["data_dir"] / "cifar-10-batches-py")
    (folder / "test_batch").unlink()

    assert available_sources("cifar10") == []
    with pytest.raises(DatasetUnavailableError, match="not available offline"):
        load_dataset("cifar10")


# --- Keras cache location ---


def test_keras_cache_location_follows_keras(keras_home):
    assert datasets.keras_home() == keras_home
    assert datasets.keras_datasets_dir() == keras_home / "datasets"


# --- Subsets and synthetic data ---


def test_subset_returns_views_of_the_first_samples():
    full = synthetic_dataset("fashion_mnist", num_train=100, num_test=40)

    part = full.subset(30, 10)

    assert part.x_train.shape == (30, 28, 28) and part.y_test.shape == (10,)
    assert np.shares_memory(part.x_train, full.x_train) and np.shares_memory(part.y_test, full.y_test)
    np.testing.assert_array_equal(part.y_train, full.y_train[:30])
    assert full.subset(500).x_train.shape[0] == 100
    assert full.subset(5).x_test.shape[0] == 40
    with pytest.raises(ValueError, match="at least 1"):
        full.subset(0)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_generated_dataset_has_real_shapes_and_is_labelled(name):
    info = get_info(name)
    data = synthetic_dataset(name, num_train=500, num_test=200, seed=3)

    assert data.synthetic is True and data.source == datasets.GENERATED_SOURCE
    assert "generated" in data.source and "random labels" in data.source and "not real data" in data.source
    assert data.x_train.shape == (500, *info.image_shape) and data.x_test.shape == (200, *info.image_shape)
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        assert array.dtype == np.uint8
    assert data.y_train.shape == (500,) and data.y_test.shape == (200,)


@pytest.mark.parametrize("name", DATASET_NAMES)
@pytest.mark.parametrize(("num_train", "num_test"), [(5_000, 1_000), (1_003, 17)])
def test_generated_labels_are_balanced_so_a_constant_guess_scores_chance(name, num_train, num_test):
    data = synthetic_dataset(name, num_train, num_test, seed=0)

    for labels in (data.y_train, data.y_test):
        counts = np.bincount(labels, minlength=10)
        assert len(counts) == 10 and counts.max() - counts.min() <= 1  # every class, equally often
        # The best constant prediction (the most common class) scores chance: 1 in 10, up to rounding.
        assert counts.max() / len(labels) <= 0.1 + 1 / len(labels)
    # Labels come in a random order, not 0, 1, 2, ... repeated.
    assert not np.array_equal(data.y_train[:20], np.arange(20) % 10)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_generated_images_say_nothing_about_their_labels(name):
    # A nearest-class-mean classifier fitted on the training split scores chance on the test split: the
    # pixels are independent of the labels, so "accuracy" on generated data cannot be near 100 %.
    data = synthetic_dataset(name, num_train=2_000, num_test=1_000, seed=3)

    means = np.stack([data.x_train[data.y_train == c].mean(axis=0) for c in range(10)]).reshape(10, -1)
    test = data.x_test.reshape(1_000, -1).astype(np.float32)
    distances = (test**2).sum(axis=1)[:, None] - 2 * test @ means.T.astype(np.float32) + (means**2).sum(axis=1)
    accuracy = (distances.argmin(axis=1) == data.y_test).mean()
    assert 0.05 < accuracy < 0.15
    # The pixels span the whole uint8 range, with the same spread in every class.
    assert data.x_train.min() == 0 and data.x_train.max() == 255
    assert np.ptp(means.mean(axis=1)) < 2


def test_synthetic_dataset_is_reproducible():
    first = synthetic_dataset("cifar10", 20, 5, seed=1)
    again = synthetic_dataset("cifar10", 20, 5, seed=1)
    other = synthetic_dataset("cifar10", 20, 5, seed=2)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_train, other.x_train)
    with pytest.raises(ValueError):
        synthetic_dataset("cifar10", 0, 5)
