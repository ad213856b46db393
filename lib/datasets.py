"""Fashion-MNIST and CIFAR-10: what they are, and loading them offline through the Keras loaders.

The data always goes through `keras.datasets.fashion_mnist.load_data()` and
`keras.datasets.cifar10.load_data()`, the loaders the tutorial used. Those loaders download into
the Keras cache (`$KERAS_HOME/datasets`, default `~/.keras/datasets`) when a file is missing, so
before calling them we put a local copy where they look ("seeding" the cache) and never call them
when no copy exists, unless downloads are allowed. Local copies are looked for, in order:

1. the Keras cache itself, already populated;
2. a data folder (`data_dir` argument, else `$GPUX_DATA_DIR`, else `data/` in the repository) holding
   the original files: `fashion-mnist/*.gz`, `cifar-10-python.tar.gz` or an extracted
   `cifar-10-batches-py/` folder;
3. for Fashion-MNIST, the Debian package `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`,
   overridden by `$GPUX_FASHION_MNIST_DIR`).

The Keras CIFAR-10 loader only trusts the official archive (it checks its SHA-256 and re-downloads
anything else), so an extracted folder or a re-packed archive is read by the same loader with its
download step pointed at the local folder. Images come back as `uint8`, labels as 1-D `uint8`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import shutil
import sys
import tarfile
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lib.backend import keras_home_rule

DATASET_NAMES = ("fashion_mnist", "cifar10")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data"  # used when neither data_dir nor $GPUX_DATA_DIR is given
DEBIAN_FASHION_MNIST_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")  # apt package dataset-fashion-mnist
DATA_DIR_ENV = "GPUX_DATA_DIR"
FASHION_MNIST_DIR_ENV = "GPUX_FASHION_MNIST_DIR"

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FASHION_MNIST_CACHE_SUBDIR = "fashion-mnist"  # Keras: datasets/fashion-mnist/<file>

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_NAME = "cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"  # Keras checks this
CIFAR10_FOLDER_NAME = "cifar-10-batches-py"  # the folder inside the archive
CIFAR10_BATCH_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR10_CACHE_TARGET = "cifar-10-batches-py-target"  # Keras: extracts into datasets/<this>/
CIFAR10_CACHE_ARCHIVE = CIFAR10_CACHE_TARGET + "_archive"  # Keras: stores the archive as datasets/<this>
GENERATED_SOURCE = "generated images (random pixels) with random labels, not real data"  # Dataset.source


class UnknownDatasetError(ValueError):
    """A dataset name that is not one of `DATASET_NAMES`."""


class DatasetUnavailableError(RuntimeError):
    """The dataset cannot be loaded (no local copy, damaged files, failed download); the message says the fix.

    Attributes:
        reason: What went wrong, with the path involved.
        fix: How to make the dataset available, with exact paths and commands.
    """

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(f"{reason} {fix}".strip())
        self.reason = reason
        self.fix = fix


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, known without loading it."""

    name: str  # "fashion_mnist" or "cifar10"
    title: str  # display name
    image_shape: tuple[int, ...]  # one image: (28, 28) grayscale or (32, 32, 3) RGB
    class_names: tuple[str, ...]  # label index -> readable name
    num_train: int  # training images in the full dataset
    num_test: int  # test images in the full dataset
    description: str = ""  # one sentence: what the images show

    @property
    def num_classes(self) -> int:
        """Number of classes (labels are 0 .. num_classes - 1)."""
        return len(self.class_names)

    @property
    def input_size(self) -> int:
        """Values per image once flattened: the input width of a Dense model."""
        return int(np.prod(self.image_shape))

    @property
    def is_rgb(self) -> bool:
        """True for colour images (a trailing channel axis of 3)."""
        return len(self.image_shape) == 3


DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        title="Fashion-MNIST",
        image_shape=(28, 28),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        num_train=60_000,
        num_test=10_000,
        description=(
            "70,000 grayscale photos of clothes, shoes and bags from Zalando's online shop, 28 x 28 pixels, "
            "each of exactly one of 10 kinds."
        ),
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        title="CIFAR-10",
        image_shape=(32, 32, 3),
        class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        num_train=50_000,
        num_test=10_000,
        description=(
            "60,000 small colour photos, 32 x 32 pixels, each of exactly one of 10 kinds of object: animals "
            "and vehicles, not digits."
        ),
    ),
}


def get_info(name: str) -> DatasetInfo:
    """Returns the description of a dataset.

    Args:
        name: One of `DATASET_NAMES`.

    Raises:
        UnknownDatasetError: The name is not a known dataset.
    """
    try:
        return DATASETS[name]
    except KeyError:
        valid = ", ".join(repr(n) for n in DATASET_NAMES)
        raise UnknownDatasetError(f"Unknown dataset {name!r}; use one of {valid}.") from None


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test arrays of one dataset, and where they came from. Treat the arrays as read-only."""

    info: DatasetInfo
    x_train: np.ndarray  # uint8, (n, 28, 28) or (n, 32, 32, 3)
    y_train: np.ndarray  # uint8 class indices, (n,)
    x_test: np.ndarray  # uint8, like x_train
    y_test: np.ndarray  # uint8 class indices, (n,)
    source: str  # readable origin: "Debian package dataset-fashion-mnist (...)", or GENERATED_SOURCE
    synthetic: bool = False  # True when generated, not the real dataset

    def subset(self, num_train: int, num_test: int | None = None) -> Dataset:
        """Returns the first samples of each split, as views (no copy).

        Args:
            num_train: Training samples to keep; more than available keeps all.
            num_test: Test samples to keep; None keeps all.

        Raises:
            ValueError: A count is below 1.
        """
        num_test = len(self.x_test) if num_test is None else num_test
        if num_train < 1 or num_test < 1:
            raise ValueError(f"Subset sizes must be at least 1 (got num_train={num_train}, num_test={num_test}).")
        return Dataset(
            info=self.info,
            x_train=self.x_train[:num_train],
            y_train=self.y_train[:num_train],
            x_test=self.x_test[:num_test],
            y_test=self.y_test[:num_test],
            source=self.source,
            synthetic=self.synthetic,
        )


@dataclass(frozen=True)
class DataLocations:
    """Folders searched for local copies, resolved once from arguments and environment variables."""

    data_dir: pathlib.Path  # holds fashion-mnist/*.gz, cifar-10-python.tar.gz or cifar-10-batches-py/
    debian_fashion_mnist_dir: pathlib.Path  # the Debian package's folder
    keras_datasets_dir: pathlib.Path  # where the Keras loaders look: <Keras home>/datasets


@dataclass(frozen=True)
class DataSource:
    """One local copy of a dataset (or the Keras download), as found on disk."""

    kind: str  # "keras_cache", "data_dir", "debian" or "download"
    path: pathlib.Path  # folder of .gz files, archive file or extracted batches folder
    description: str  # readable, for messages and `Dataset.source`


def keras_home(environ: Mapping[str, str] | None = None) -> pathlib.Path:
    """Returns the Keras home folder the Keras loaders use (they cache datasets in its `datasets/`).

    Keras fixes its home when it is imported (`lib.backend.keras_home_rule`), so when Keras is already
    imported its value is read from it; otherwise the same rule is applied, without paying for a Keras import.

    Args:
        environ: The environment to read; `os.environ` when None.
    """
    keras_config = sys.modules.get("keras.src.backend.config")
    if keras_config is not None and hasattr(keras_config, "keras_home"):
        return pathlib.Path(keras_config.keras_home()).expanduser()
    return keras_home_rule(os.environ if environ is None else environ)


def keras_datasets_dir(environ: Mapping[str, str] | None = None) -> pathlib.Path:
    """Returns the folder `keras.utils.get_file` stores datasets in (same fallback rule as Keras)."""
    base = keras_home(environ)
    # Keras creates its home when imported; do the same so the writability test below matches its answer.
    with contextlib.suppress(OSError):
        base.mkdir(parents=True, exist_ok=True)
    if not os.access(base, os.W_OK):
        base = pathlib.Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"
    return base / "datasets"


def resolve_locations(
    data_dir: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> DataLocations:
    """Resolves the folders to search from the argument and the environment.

    Args:
        data_dir: Data folder; None uses `$GPUX_DATA_DIR`, else `data/` in the repository.
        environ: The environment to read; `os.environ` when None.
    """
    env = os.environ if environ is None else environ
    chosen_data_dir = data_dir if data_dir is not None else env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    debian_dir = env.get(FASHION_MNIST_DIR_ENV) or DEBIAN_FASHION_MNIST_DIR
    return DataLocations(
        data_dir=pathlib.Path(chosen_data_dir).expanduser(),
        debian_fashion_mnist_dir=pathlib.Path(debian_dir).expanduser(),
        keras_datasets_dir=keras_datasets_dir(env),
    )


def available_sources(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[DataSource]:
    """Lists the local copies of a dataset that exist, in the order they are used.

    Args:
        name: One of `DATASET_NAMES`.
        data_dir: Data folder; None uses `$GPUX_DATA_DIR`, else `data/` in the repository.

    Returns:
        The sources found; empty when the dataset can only be downloaded.
    """
    return _find_sources(get_info(name), resolve_locations(data_dir))


OWNER_FIX_TITLE = "For the server's owner: how to add {title}"  # the pages fold `unavailable_fix` under this


def unavailable_fix(name: str, locations: DataLocations) -> str:
    """Says how to make a dataset loadable offline, with exact paths."""
    info = get_info(name)
    if name == "fashion_mnist":
        files = ", ".join(FASHION_MNIST_FILES)
        return (
            f"To get {info.title}: install the Debian package with `sudo apt-get install dataset-fashion-mnist` "
            f"(files land in {DEBIAN_FASHION_MNIST_DIR}), or put the four files {files} in "
            f"{locations.data_dir / 'fashion-mnist'}/ (set {DATA_DIR_ENV} to use another folder), or, on a machine "
            "with internet access, run `python -m lib.fetch_data` to let Keras download them."
        )
    return (
        f"To get {info.title}: download {CIFAR10_URL} (about 163 MiB) and put it at "
        f"{locations.data_dir / CIFAR10_ARCHIVE_NAME} (set {DATA_DIR_ENV} to use another folder; an extracted "
        f"{CIFAR10_FOLDER_NAME}/ folder there works too) or in the Keras cache at "
        f"{locations.keras_datasets_dir / CIFAR10_CACHE_ARCHIVE}, or, on a machine with internet access, run "
        "`python -m lib.fetch_data` to let Keras download it."
    )


def prepare_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, allow_download: bool = False
) -> DataSource:
    """Makes a dataset loadable by its Keras loader, without reading it into memory when a local copy exists.

    Seeds the Keras cache from the first local source; with no local source and `allow_download`, lets
    Keras download it (which also reads it once).

    Args:
        name: One of `DATASET_NAMES`.
        data_dir: Data folder; None uses `$GPUX_DATA_DIR`, else `data/` in the repository.
        allow_download: Whether Keras may download the dataset when no local copy exists.

    Returns:
        The source the dataset will be read from.

    Raises:
        DatasetUnavailableError: No local copy and no (successful) download; or a damaged archive.
    """
    info = get_info(name)
    locations = resolve_locations(data_dir)
    sources = _find_sources(info, locations)
    if sources:
        _seed_keras_cache(info, sources[0], locations)
        return sources[0]
    if not allow_download:
        raise DatasetUnavailableError(f"{info.title} is not available offline.", unavailable_fix(name, locations))
    _download(info, locations)
    return _download_source(info, locations)


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None, allow_download: bool = False) -> Dataset:
    """Loads a dataset through its Keras loader, from a local copy when there is one.

    Args:
        name: One of `DATASET_NAMES`.
        data_dir: Data folder; None uses `$GPUX_DATA_DIR`, else `data/` in the repository.
        allow_download: Whether Keras may download the dataset when no local copy exists. When False and
            there is no local copy, the network is never touched.

    Returns:
        The full dataset, images `uint8`, labels 1-D `uint8`.

    Raises:
        UnknownDatasetError: The name is not a known dataset.
        DatasetUnavailableError: No local copy (and no download), damaged files, or a failed download;
            the message names the path and the fix.
    """
    info = get_info(name)
    locations = resolve_locations(data_dir)
    sources = _find_sources(info, locations)
    if not sources:
        if not allow_download:
            raise DatasetUnavailableError(f"{info.title} is not available offline.", unavailable_fix(name, locations))
        arrays = _download(info, locations)
        return _to_dataset(info, arrays, _download_source(info, locations), locations)
    source = sources[0]
    batches_dir = _seed_keras_cache(info, source, locations)
    arrays = _read_with_keras(info, source, batches_dir, locations)
    return _to_dataset(info, arrays, source, locations)


def synthetic_dataset(name: str, num_train: int, num_test: int, seed: int = 0) -> Dataset:
    """Generates a stand-in dataset with the real shapes, for timing runs and tests without the real data.

    Pixels are uniform random `uint8` values and labels are drawn independently of them, every class equally
    often (a shuffled cycle through the classes). Nothing links an image to its label, so no model beats
    chance (1 / num_classes) on the test split: timings measured on this data are real, accuracy is not.

    Args:
        name: One of `DATASET_NAMES` (sets image shape and class names).
        num_train: Training images to generate.
        num_test: Test images to generate.
        seed: Seed for pixels and labels.

    Raises:
        ValueError: A count is below 1.
    """
    info = get_info(name)
    if num_train < 1 or num_test < 1:
        raise ValueError(f"Generated sizes must be at least 1 (got num_train={num_train}, num_test={num_test}).")
    rng = np.random.default_rng(seed)
    x_train, x_test = _random_images(info, num_train, rng), _random_images(info, num_test, rng)
    y_train, y_test = _balanced_random_labels(info, num_train, rng), _balanced_random_labels(info, num_test, rng)
    return Dataset(info, x_train, y_train, x_test, y_test, source=GENERATED_SOURCE, synthetic=True)


def _random_images(info: DatasetInfo, count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(count, *info.image_shape), dtype=np.uint8)


def _balanced_random_labels(info: DatasetInfo, count: int, rng: np.random.Generator) -> np.ndarray:
    # Class counts differ by at most one, so always guessing one class scores chance, and the order is random.
    return rng.permutation(np.arange(count) % info.num_classes).astype(np.uint8)


def _find_sources(info: DatasetInfo, locations: DataLocations) -> list[DataSource]:
    if info.name == "fashion_mnist":
        return _fashion_mnist_sources(locations)
    return _cifar10_sources(locations)


def _fashion_mnist_sources(locations: DataLocations) -> list[DataSource]:
    candidates = [
        ("keras_cache", locations.keras_datasets_dir / FASHION_MNIST_CACHE_SUBDIR, "Keras cache"),
        ("data_dir", locations.data_dir / "fashion-mnist", "data folder"),
        ("debian", locations.debian_fashion_mnist_dir, "Debian package dataset-fashion-mnist"),
    ]
    sources = []
    for kind, folder, label in candidates:
        if all((folder / fname).is_file() for fname in FASHION_MNIST_FILES):
            sources.append(DataSource(kind, folder, _describe(label, folder / FASHION_MNIST_FILES[0], folder)))
    return sources


def _cifar10_sources(locations: DataLocations) -> list[DataSource]:
    cache_archive = locations.keras_datasets_dir / CIFAR10_CACHE_ARCHIVE
    cache_folder = locations.keras_datasets_dir / CIFAR10_CACHE_TARGET / CIFAR10_FOLDER_NAME
    data_archive = locations.data_dir / CIFAR10_ARCHIVE_NAME
    data_folder = locations.data_dir / CIFAR10_FOLDER_NAME
    sources = []
    if cache_archive.is_file():
        sources.append(DataSource("keras_cache", cache_archive, _describe("Keras cache", cache_archive, cache_archive)))
    if _is_cifar10_folder(cache_folder):
        sources.append(DataSource("keras_cache", cache_folder, _describe("Keras cache", cache_folder, cache_folder)))
    if data_archive.is_file():
        sources.append(DataSource("data_dir", data_archive, f"data folder ({data_archive})"))
    if _is_cifar10_folder(data_folder):
        sources.append(DataSource("data_dir", data_folder, f"data folder ({data_folder})"))
    return sources


def _is_cifar10_folder(folder: pathlib.Path) -> bool:
    return all((folder / fname).is_file() for fname in CIFAR10_BATCH_FILES)


def _describe(label: str, probe: pathlib.Path, shown: pathlib.Path) -> str:
    # Files we linked into the Keras cache say where they really live.
    if not probe.is_symlink():
        return f"{label} ({shown})"
    target = probe.resolve() if probe == shown else probe.resolve().parent
    return f"{label} ({shown}, linked to {target})"


def _download_source(info: DatasetInfo, locations: DataLocations) -> DataSource:
    if info.name == "fashion_mnist":
        path = locations.keras_datasets_dir / FASHION_MNIST_CACHE_SUBDIR
    else:
        path = locations.keras_datasets_dir / CIFAR10_CACHE_ARCHIVE
    return DataSource("download", path, f"downloaded by Keras ({path})")


def _seed_keras_cache(info: DatasetInfo, source: DataSource, locations: DataLocations) -> pathlib.Path | None:
    """Puts the source where the Keras loader looks.

    Returns:
        For CIFAR-10 read from a folder (not the official archive), the `cifar-10-batches-py` folder to point
        the loader at; None when the unmodified loader will find the official file itself.
    """
    if info.name == "fashion_mnist":
        cache_folder = locations.keras_datasets_dir / FASHION_MNIST_CACHE_SUBDIR
        for fname in FASHION_MNIST_FILES:
            _link_or_copy(source.path / fname, cache_folder / fname)
        return None
    if source.path.is_dir():
        return source.path
    if _sha256(source.path) == CIFAR10_ARCHIVE_SHA256:
        _link_or_copy(source.path, locations.keras_datasets_dir / CIFAR10_CACHE_ARCHIVE)
        return None
    return _extract_cifar10_archive(info, source.path, locations)


def _link_or_copy(source: pathlib.Path, target: pathlib.Path) -> None:
    if target.exists() and target.resolve() == source.resolve():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build the link (or copy) under a temporary name and rename it into place: another process seeding the
    # same cache at the same time never sees a missing or half-written file.
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        temporary.symlink_to(source.resolve())
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract_cifar10_archive(info: DatasetInfo, archive: pathlib.Path, locations: DataLocations) -> pathlib.Path:
    # Extract where Keras would, via a scratch folder, so an interrupted extraction never looks complete.
    target_dir = locations.keras_datasets_dir / CIFAR10_CACHE_TARGET
    target_dir.mkdir(parents=True, exist_ok=True)
    final = target_dir / CIFAR10_FOLDER_NAME
    with tempfile.TemporaryDirectory(dir=target_dir) as scratch:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise _damaged(info, str(archive), error, locations) from error
        extracted = pathlib.Path(scratch) / CIFAR10_FOLDER_NAME
        if not _is_cifar10_folder(extracted):
            missing = ", ".join(f for f in CIFAR10_BATCH_FILES if not (extracted / f).is_file())
            error = FileNotFoundError(f"the archive has no {CIFAR10_FOLDER_NAME}/ folder with {missing}")
            raise _damaged(info, str(archive), error, locations)
        if final.exists():
            shutil.rmtree(final)
        extracted.rename(final)
    return final


def _read_with_keras(
    info: DatasetInfo, source: DataSource, batches_dir: pathlib.Path | None, locations: DataLocations
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    try:
        if batches_dir is not None:
            return _keras_cifar10_from_folder(batches_dir)
        return _keras_loader(info.name)()
    except Exception as error:  # any failure to parse means the files are unusable; say which and why
        raise _damaged(info, source.description, error, locations) from error


def _keras_loader(name: str) -> Any:
    import keras

    return keras.datasets.fashion_mnist.load_data if name == "fashion_mnist" else keras.datasets.cifar10.load_data


_KERAS_PATCH_LOCK = threading.Lock()  # the loader's module is shared by all threads of a Streamlit server


def _keras_cifar10_from_folder(batches_dir: pathlib.Path) -> Any:
    """Runs `keras.datasets.cifar10.load_data()` on a local `cifar-10-batches-py` folder.

    The loader's only file step is `get_file(...)`, which returns the folder holding `cifar-10-batches-py`
    but insists on the official archive first; here it returns the local folder's parent instead.
    """
    import keras
    from keras.src.datasets import cifar10 as keras_cifar10_module

    def local_folder(**_: Any) -> str:
        return str(batches_dir.parent)

    with _KERAS_PATCH_LOCK, _patched(keras_cifar10_module, "get_file", local_folder):
        return keras.datasets.cifar10.load_data()


@contextlib.contextmanager
def _patched(module: Any, attribute: str, replacement: Any):
    original = getattr(module, attribute)
    setattr(module, attribute, replacement)
    try:
        yield
    finally:
        setattr(module, attribute, original)


def _download(
    info: DatasetInfo, locations: DataLocations
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    try:
        return _keras_loader(info.name)()
    except Exception as error:  # no network, HTTP errors, hash mismatch: all mean "not downloaded"
        raise DatasetUnavailableError(
            f"Downloading {info.title} with Keras failed ({type(error).__name__}: {error}).",
            unavailable_fix(info.name, locations),
        ) from error


def _damaged(info: DatasetInfo, where: str, error: BaseException, locations: DataLocations) -> Exception:
    return DatasetUnavailableError(
        f"{info.title} from {where} could not be read ({type(error).__name__}: {error}): the files are damaged "
        f"or not the originals. Delete them (and entries in {locations.keras_datasets_dir} linked to them).",
        unavailable_fix(info.name, locations),
    )


def _to_dataset(
    info: DatasetInfo,
    arrays: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    source: DataSource,
    locations: DataLocations,
) -> Dataset:
    (x_train, y_train), (x_test, y_test) = arrays
    x_train, x_test = _channels_last(info, x_train), _channels_last(info, x_test)
    y_train, y_test = np.asarray(y_train).reshape(-1), np.asarray(y_test).reshape(-1)
    try:
        _check_split(info, "training", x_train, y_train)
        _check_split(info, "test", x_test, y_test)
    except ValueError as error:
        raise _damaged(info, source.description, error, locations) from error
    loader = f"keras.datasets.{info.name}.load_data()"
    return Dataset(
        info=info,
        x_train=np.ascontiguousarray(x_train, dtype=np.uint8),
        y_train=np.ascontiguousarray(y_train, dtype=np.uint8),
        x_test=np.ascontiguousarray(x_test, dtype=np.uint8),
        y_test=np.ascontiguousarray(y_test, dtype=np.uint8),
        source=f"{source.description}, read with {loader}",
        synthetic=False,
    )


def _channels_last(info: DatasetInfo, images: np.ndarray) -> np.ndarray:
    # Keras returns CIFAR-10 as (n, 3, 32, 32) when image_data_format is "channels_first".
    images = np.asarray(images)
    if info.is_rgb and images.ndim == 4 and images.shape[1] == 3 and images.shape[-1] != 3:
        return images.transpose(0, 2, 3, 1)
    return images


def _check_split(info: DatasetInfo, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    if images.shape[1:] != info.image_shape:
        raise ValueError(f"{split} images have shape {images.shape[1:]}, expected {info.image_shape}")
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"{split} split has {len(images)} images and {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= info.num_classes:
        raise ValueError(f"{split} labels span {labels.min()}..{labels.max()}, expected 0..{info.num_classes - 1}")
