"""The preprocessing the engine trains with: images scaled to float32 in [0, 1], labels encoded for the loss.

Pure NumPy, so the Datasets page shows the very arrays `lib.engine.prepare_data` makes, without
importing Keras. In NumPy, `x / 255` on a `uint8` array returns `float64` (8 bytes per pixel), eight
times the memory of the images and twice what the model computes in; the conversions here are explicit.
"""

from __future__ import annotations

import numpy as np


def scale_images(images: np.ndarray) -> np.ndarray:
    """Returns uint8 images as float32 in [0, 1], converted in one pass without a float64 copy."""
    scaled = images.astype(np.float32)
    scaled *= np.float32(1 / 255)
    return scaled


def encode_labels(labels: np.ndarray, encoding: str, num_classes: int) -> np.ndarray:
    """Returns class indices as the loss expects them.

    Args:
        labels: 1-D class indices.
        encoding: "one_hot" (float32 rows for categorical cross-entropy, as `keras.utils.to_categorical`
            makes them) or "integer" (int32 for the sparse loss).
        num_classes: Width of the one-hot rows.

    Raises:
        ValueError: A label is outside 0..num_classes-1.
    """
    indices = np.asarray(labels).reshape(-1).astype(np.int32)
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(f"Labels must be in 0..{num_classes - 1}, got {indices.min()}..{indices.max()}.")
    if encoding == "one_hot":
        return np.eye(num_classes, dtype=np.float32)[indices]
    return indices
