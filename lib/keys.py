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
    MATMUL_TIME_CHART = "matmul_time_chart"
    MATMUL_GFLOPS_CHART = "matmul_gflops_chart"

    # Build, Train and Results pages (stable names required by the browser tests)
    PRESET = "preset"
    DEVICES = "devices"
    EPOCHS = "epochs"
    SAMPLE_LIMIT = "sample_limit"
    TRAIN = "train"
    CANCEL = "cancel"

    # Build page widgets
    BUILD_DATASET = "build_dataset"
    HIDDEN_LAYERS = "hidden_layers"
    UNITS = "units"  # one width for every hidden layer
    PER_LAYER_UNITS = "per_layer_units"  # toggle: a width per layer instead
    LAYER_UNITS = "layer_units"  # prefix: "layer_units_1", "layer_units_2", ... (see layer_units_key)
    HIDDEN_ACTIVATION = "hidden_activation"
    OUTPUT_ACTIVATION = "output_activation"
    OPTIMIZER = "optimizer"
    LEARNING_RATE = "learning_rate"
    BUILD_EPOCHS = "build_epochs"
    BATCH_SIZE = "batch_size"
    LABEL_ENCODING = "label_encoding"
    STEPS_PER_EXECUTION = "steps_per_execution"
    DEVICE_RESIDENT = "device_resident"
    JIT_COMPILE = "jit_compile"
    PRECISION = "precision"

    # Train page widgets
    SYNTHETIC = "synthetic"
    USE_ALL_SAMPLES = "use_all_samples"  # button: train on the whole training set
    USE_SUGGESTED_SAMPLES = "use_suggested_samples"  # button: back to the suggested sample limit

    # Train page session state
    DEVICES_RESOLVED = "devices_resolved"  # set once the session's devices were filled in (link or default)
    SAMPLE_SUGGESTION = "sample_suggestion"  # (what it was made for, lib.estimates.SampleSuggestion), kept as shown
    LINKED_JOB_CHECKED = "linked_job_checked"  # the link's job id this session already tried to adopt
    TRAIN_MESSAGES = "train_messages"  # (kind, text) messages the Train page shows once
    CANCEL_ASKED = "cancel_asked"  # the job id this session pressed Cancel for (its button then says Stopping...)

    # Results page widgets
    RESULTS_DATASET = "results_dataset"
    RESULTS_DEVICE = "results_device"
    RESULTS_PRESET = "results_preset"
    RESULTS_DATES = "results_dates"
    RESULTS_COMPARE = "results_compare"  # the runs drawn in the charts
    RESULTS_DOWNLOAD = "results_download"
    RESULTS_MEASURE_CEILING = "results_measure_ceiling"  # button: measure this machine's matmul ceiling

    # Session state shared by the Build, Train and Results pages
    MODEL_SPEC = "model_spec"  # the ModelSpec being built
    RUN_SETTINGS = "run_settings"  # lib.links.RunSettings from a shared link
    PRESET_LOADED = "preset_loaded"  # set by the preset callback: the preset wins this rerun's widget callbacks
    LINK_NOTICES = "link_notices"  # notices about a shared link's ignored or clamped values
    OWNER_ID = "owner_id"  # uuid of this browser session, the job runner's owner
    JOB_ID = "job_id"  # this session's latest training job


def layer_units_key(index: int) -> str:
    """Returns the key of the Build page's units input for hidden layer `index` (0-based)."""
    return f"{Key.LAYER_UNITS}_{index + 1}"
