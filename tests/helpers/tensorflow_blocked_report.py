"""Prints whether `lib.worker.block_unused_tensorflow` blocked TensorFlow, then whether seeding Keras imported it.

Run as `KERAS_BACKEND=jax python -m tests.helpers.tensorflow_blocked_report`: two lines, "True" and "False"
when the worker keeps TensorFlow out of a JAX job.
"""

from __future__ import annotations

import os
import sys

from lib.worker import block_unused_tensorflow


def main() -> None:
    """Blocks TensorFlow as a worker does, seeds Keras, and reports both."""
    print(block_unused_tensorflow(os.environ))
    import keras

    keras.utils.set_random_seed(1)
    print(sys.modules.get("tensorflow") is not None)


if __name__ == "__main__":
    main()
