"""Exploratory data analysis of an image dataset, and the numbers behind its preprocessing.

Pure NumPy / pandas: each function takes arrays or a `Dataset` and returns a tidy DataFrame or an
array that `lib.charts` draws or a page shows. Nothing here changes its inputs.

A note on dtypes: in NumPy, `x / 255` on a `uint8` array returns `float64` (8 bytes per pixel),
eight times the memory of the `uint8` images and twice what the model computes in. We keep images
`uint8` and make `float32` once, with `lib.preprocessing.scale_images` (what the engine trains on).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from lib.datasets import Dataset, DatasetInfo

GRAY_CHANNEL = "gray"  # channel name of single-channel images
RGB_CHANNELS = ("red", "green", "blue")  # channel names of (..., 3) images


def class_counts(dataset: Dataset) -> pd.DataFrame:
    """Counts the images of each class in the training and test splits.

    Returns:
        One row per split and class: `split` ("train"/"test"), `class_index`, `class_name`, `count`,
        `share` (fraction of that split).
    """
    frames = [
        _split_counts("train", dataset.y_train, dataset.info),
        _split_counts("test", dataset.y_test, dataset.info),
    ]
    return pd.concat(frames, ignore_index=True)


def _split_counts(split: str, labels: np.ndarray, info: DatasetInfo) -> pd.DataFrame:
    counts = np.bincount(labels, minlength=info.num_classes)[: info.num_classes]
    return pd.DataFrame(
        {
            "split": split,
            "class_index": np.arange(info.num_classes),
            "class_name": list(info.class_names),
            "count": counts.astype(np.int64),
            "share": counts / max(int(counts.sum()), 1),
        }
    )


def channel_names(images: np.ndarray) -> tuple[str, ...]:
    """Names the colour channels of a batch of images: ("gray",) or ("red", "green", "blue")."""
    if images.ndim == 4 and images.shape[-1] == 3:
        return RGB_CHANNELS
    return (GRAY_CHANNEL,)


def pixel_histogram(images: np.ndarray, bins: int = 32) -> pd.DataFrame:
    """Counts pixel intensities in equal-width bins, per colour channel.

    Args:
        images: `uint8` images, (n, h, w) grayscale or (n, h, w, 3) RGB; pass a sample for speed.
        bins: Number of bins over 0..255, from 1 to 256.

    Returns:
        One row per channel and bin: `channel`, `bin_start` and `bin_end` (intensities, end exclusive),
        `count` (pixels), `share` (fraction of that channel's pixels).

    Raises:
        ValueError: The images are not `uint8` or `bins` is outside 1..256.
    """
    if images.dtype != np.uint8:
        raise ValueError(f"pixel_histogram expects uint8 images, got {images.dtype}.")
    if not 1 <= bins <= 256:
        raise ValueError(f"bins must be between 1 and 256, got {bins}.")
    edges = np.linspace(0, 256, bins + 1).round().astype(np.int64)
    names = channel_names(images)
    frames = []
    for index, name in enumerate(names):
        values = images[..., index] if len(names) > 1 else images
        per_intensity = np.bincount(values.reshape(-1), minlength=256)
        counts = np.add.reduceat(per_intensity, edges[:-1])
        total = max(int(counts.sum()), 1)
        frames.append(
            pd.DataFrame(
                {
                    "channel": name,
                    "bin_start": edges[:-1],
                    "bin_end": edges[1:],
                    "count": counts,
                    "share": counts / total,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def mean_image_per_class(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Averages the images of each class: the "typical" image a linear model would see.

    Args:
        images: `uint8` images, (n, ...).
        labels: Class indices, (n,).
        num_classes: Number of classes.

    Returns:
        `float32` array (num_classes, ...) of mean intensities in 0..255; all zeros for a class with no images.
    """
    means = np.zeros((num_classes, *images.shape[1:]), dtype=np.float32)
    for class_index in range(num_classes):
        members = images[labels == class_index]
        if len(members):
            means[class_index] = members.mean(axis=0, dtype=np.float32)
    return means


def memory_footprint(dataset: Dataset) -> pd.DataFrame:
    """Memory of the training images stored as uint8, float32 and float64.

    Returns:
        One row per dtype: `dtype`, `bytes_per_value`, `bytes`, `mib` (bytes / 2**20), `ratio` (to uint8),
        `note` (when that dtype appears).
    """
    values = int(dataset.x_train.size)
    rows = [
        ("uint8", 1, "as loaded: what we keep in memory"),
        ("float32", 4, "what the model computes in: made per batch"),
        ("float64", 8, "what x / 255 gives in NumPy: avoid"),
    ]
    return pd.DataFrame(
        {
            "dtype": [dtype for dtype, _, _ in rows],
            "bytes_per_value": [size for _, size, _ in rows],
            "bytes": [values * size for _, size, _ in rows],
            "mib": [values * size / 2**20 for _, size, _ in rows],
            "ratio": [float(size) for _, size, _ in rows],
            "note": [note for _, _, note in rows],
        }
    )


def sample_indices(labels: np.ndarray, class_filter: Iterable[int] | None, count: int, seed: int = 0) -> np.ndarray:
    """Picks images to show: a reproducible random sample, optionally of some classes only.

    Args:
        labels: Class indices, (n,).
        class_filter: Class indices to keep; None or empty keeps every class.
        count: How many to pick; fewer come back when fewer match.
        seed: Seed of the random choice.

    Returns:
        Sorted `int64` indices into `labels`.
    """
    wanted = list(class_filter or [])
    candidates = np.flatnonzero(np.isin(labels, wanted)) if wanted else np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(candidates, size=min(max(count, 0), len(candidates)), replace=False)
    return np.sort(chosen).astype(np.int64)


def first_labels(dataset: Dataset, count: int = 10) -> pd.DataFrame:
    """The first training labels with their class names (what the tutorial printed as `y_train[:10]`).

    Returns:
        Columns `index`, `label`, `class_name`.
    """
    labels = dataset.y_train[:count]
    return pd.DataFrame(
        {
            "index": np.arange(len(labels)),
            "label": labels.astype(np.int64),
            "class_name": [dataset.info.class_names[label] for label in labels],
        }
    )


def class_table(info: DatasetInfo) -> pd.DataFrame:
    """Every class of a dataset with its label, known without loading the data.

    Returns:
        Columns `label`, `class_name`, one row per class in label order.
    """
    return pd.DataFrame({"label": np.arange(info.num_classes), "class_name": list(info.class_names)})


def with_article(noun: str) -> str:
    """Puts "a" or "an" before a class name: "an Ankle boot", "a T-shirt/top", "an airplane"."""
    article = "an" if noun[:1].lower() in tuple("aeiou") else "a"
    return f"{article} {noun}"


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarges one image by repeating pixels (nearest neighbour), so small images display crisply."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def to_display_uint8(image: np.ndarray) -> np.ndarray:
    """Rounds a float image in 0..255 (such as a mean image) to `uint8` for display."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
