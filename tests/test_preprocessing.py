"""The preprocessing the engine trains with and the Datasets page shows (lib.preprocessing)."""

from __future__ import annotations

import numpy as np
import pytest

from lib.preprocessing import encode_labels, scale_images


def test_scale_images_is_float32_not_float64():
    images = np.array([[0, 51, 255]], dtype=np.uint8)

    scaled = scale_images(images)

    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[0.0, 0.2, 1.0]], rtol=1e-6)
    assert images.dtype == np.uint8 and images[0, 1] == 51  # input untouched
    assert (images / 255).dtype == np.float64  # the NumPy behaviour the page warns about


def test_one_hot_labels():
    encoded = encode_labels(np.array([9, 0, 3], dtype=np.uint8), "one_hot", 10)

    assert encoded.shape == (3, 10) and encoded.dtype == np.float32
    assert encoded.argmax(axis=1).tolist() == [9, 0, 3]
    assert encoded.sum(axis=1).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="0..9"):
        encode_labels(np.array([10]), "one_hot", 10)


def test_integer_labels_are_int32_class_indices():
    encoded = encode_labels(np.array([[9], [0], [3]], dtype=np.uint8), "integer", 10)

    assert encoded.dtype == np.int32
    assert encoded.tolist() == [9, 0, 3]
    with pytest.raises(ValueError, match="0..9"):
        encode_labels(np.array([-1]), "integer", 10)
