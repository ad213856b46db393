"""Widget and session-state keys, defined once and used by pages and tests alike.

Streamlit renders a widget's key as the CSS class `st-key-<key>`, which the browser tests use,
so these values are part of the app's interface: keep them stable.
"""

from enum import StrEnum


class Key(StrEnum):
    """Keys of widgets and session-state entries."""

    # Datasets page
    DATASET = "dataset"
    SAMPLE_CLASS_FILTER = "sample_class_filter"
    SAMPLE_COUNT = "sample_count"

    # What is a GPU? page
    MATMUL_SIZES = "matmul_sizes"
    MATMUL_RUN = "matmul_run"
    MATMUL_DTYPE = "matmul_dtype"
    MATMUL_RESULTS = "matmul_results"  # session state: the last sweep's DataFrame

    # Build, Train and Results pages (stable names required by the browser tests)
    PRESET = "preset"
    DEVICES = "devices"
    EPOCHS = "epochs"
    SAMPLE_LIMIT = "sample_limit"
    TRAIN = "train"
    CANCEL = "cancel"
