"""Widget and session-state keys, defined once and used by pages and tests alike.

Streamlit renders a widget's key as the CSS class `st-key-<key>`, which the browser tests use,
so these values are part of the app's interface: keep them stable.

The Build page's widget for each model spec field is keyed by `lib.spec.SPEC_FIELDS` (`SpecField.key`, the
field's name unless another page has it): `Key` has those members too, named in upper case
(`Key.OPTIMIZER == "optimizer"`, `Key.BUILD_DATASET == "build_dataset"`, `Key.BUILD_EPOCHS`, `Key.UNITS`).
"""

from enum import StrEnum

from lib.spec import SPEC_FIELDS


class _PageKey(StrEnum):
    """Keys of widgets and session-state entries other than the spec fields' widgets."""

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
    EPOCHS = "epochs"  # the Train page's epochs slider (the Build page's is Key.BUILD_EPOCHS: see lib.spec)
    SAMPLE_LIMIT = "sample_limit"
    TRAIN = "train"
    CANCEL = "cancel"

    # Build page widgets besides the spec fields' (hidden_units' own: its `units` slider is Key.UNITS)
    HIDDEN_LAYERS = "hidden_layers"
    PER_LAYER_UNITS = "per_layer_units"  # toggle: a width per layer instead of one for every layer
    LAYER_UNITS = "layer_units"  # prefix: "layer_units_1", "layer_units_2", ... (see layer_units_key)

    # Train page widgets
    SYNTHETIC = "synthetic"
    USE_ALL_SAMPLES = "use_all_samples"  # button: train on the whole training set
    USE_SUGGESTED_SAMPLES = "use_suggested_samples"  # button: back to the suggested sample limit
    TRAIN_SCRIPT = "train_script"  # download: the finished job as a Keras script (lib.take_home)
    TRAIN_NOTEBOOK = "train_notebook"  # download: the finished job as a notebook
    TRAIN_TAKE_HOME_RUNS = "train_take_home_runs"  # which settings group the downloads reproduce
    GUESS = "guess"  # text input: the speedup the student guesses before pressing Train (lib.guesses)
    TARGET_ON = "target_on"  # toggle: stop at a target test accuracy (lib.time_to_target)
    TARGET_ACCURACY = "target_accuracy"  # number input: that target
    REPEATS = "repeats"  # number input: runs per device (lib.repeats)
    GUESS_SET_BATCH = "guess_set_batch"  # prefix: "guess_set_batch_32", ... buttons that set the batch to measure

    # Train page session state
    DEVICES_RESOLVED = "devices_resolved"  # set once the session's devices were filled in (link or default)
    SAMPLE_SUGGESTION = "sample_suggestion"  # (what it was made for, lib.estimates.SampleSuggestion), kept as shown
    LINKED_JOB_CHECKED = "linked_job_checked"  # the link's job id this session already tried to adopt
    JOB_MESSAGES = "job_messages"  # (kind, text) messages the Train or sweep page shows once (ui.job_progress)
    CANCEL_ASKED = "cancel_asked"  # the job id this session pressed Cancel for (its button then says Stopping...)
    GUESS_KEPT = "guess_kept"  # the guess input's text, kept while another page is shown (a widget's is dropped)

    # "Where does the GPU win?" page widgets (lib.sweep)
    SWEEP_DEVICES = "sweep_devices"  # the devices each batch size trains on
    SWEEP_BATCHES = "sweep_batches"  # the batch sizes compared
    SWEEP_START = "sweep_start"  # button: queue the sweep

    # Results page widgets
    RESULTS_DATASET = "results_dataset"
    RESULTS_DEVICE = "results_device"
    RESULTS_MACHINE = "results_machine"  # the machines whose runs are listed (shown when runs come from several)
    RESULTS_PRESET = "results_preset"
    RESULTS_DATES = "results_dates"
    RESULTS_COMPARE = "results_compare"  # the runs drawn in the charts
    RESULTS_DOWNLOAD = "results_download"
    RESULTS_MEASURE_CEILING = "results_measure_ceiling"  # button: measure this machine's matmul ceiling
    RESULTS_SCRIPT = "results_script"  # download: the compared runs as a Keras script (lib.take_home)
    RESULTS_NOTEBOOK = "results_notebook"  # download: the compared runs as a notebook
    RESULTS_TAKE_HOME_RUNS = "results_take_home_runs"  # which settings group of the compared runs they reproduce
    RESULTS_LEARNED_RUN = "results_learned_run"  # the compared run whose confusion matrix is drawn
    RESULTS_TIME_TO_TARGET = "results_time_to_target"  # the "Time to accuracy" box (lib.time_to_target)
    RESULTS_ENERGY = "results_energy"  # the "Energy" box (lib.energy)
    RESULTS_REPEATS = "results_repeats"  # the "Repeated runs" box (lib.repeats)
    RESULTS_COSTS = "results_costs"  # the "What it costs" box (lib.cost); its inputs: price_key(kind)

    # Lesson mode (lib.lesson, ui.lesson)
    LESSON = "lesson"  # session state: the session's lib.lesson.Lesson, None outside lesson mode
    LESSON_NOTICES = "lesson_notices"  # session state: (page, notices) about the lesson link, shown on that page
    LESSON_SPEC = "lesson_spec"  # session state: the spec the lesson started with (hidden/locked fields keep it)
    LESSON_SETTINGS = "lesson_settings"  # session state: the run settings the lesson started with
    LESSON_STARTED = "lesson_started"  # session state: the lesson's start page was opened once
    LEAVE_LESSON = "leave_lesson"  # button: leave lesson mode, every control back
    LESSON_FORM = "lesson_form"  # the teacher's lesson form (home page)
    LESSON_FORM_START = "lesson_form_start"  # the lesson form's start page
    LESSON_FORM_MODEL = "lesson_form_model"  # the lesson form's model: a preset, or the one being built
    LESSON_FORM_HIDE = "lesson_form_hide"  # the lesson form's hidden controls
    LESSON_FORM_LOCK = "lesson_form_lock"  # the lesson form's locked controls
    LESSON_FORM_NOTE = "lesson_form_note"  # the lesson form's note for every page; + "_<page>": one page's
    LESSON_FORM_MAKE = "lesson_form_make"  # the lesson form's submit button
    LESSON_FORM_LINK = "lesson_form_link"  # session state: the link the form last wrote

    # Session state shared by the Build, Train and Results pages
    MODEL_SPEC = "model_spec"  # the ModelSpec being built
    RUN_SETTINGS = "run_settings"  # lib.links.RunSettings from a shared link
    LINK_NOTICES = "link_notices"  # notices about a shared link's ignored or clamped values
    OWNER_ID = "owner_id"  # uuid of this browser session, the job runner's owner
    JOB_ID = "job_id"  # this session's latest training job

    # Sidebar, every page (ui.presenter)
    PRESENTER = "presenter"  # toggle: the presenter view (larger type, charts for a projector)
    PRESENTER_NOTICES = "presenter_notices"  # what the link's presenter= value was ignored for


# The page keys, then one per spec field's Build widget (Key.OPTIMIZER, Key.BUILD_EPOCHS, ...).
Key = StrEnum(
    "Key",
    [(key.name, key.value) for key in _PageKey]
    + [(spec_field.key.upper(), spec_field.key) for spec_field in SPEC_FIELDS],
    module=__name__,
)
Key.__doc__ = """Keys of widgets and session-state entries, the spec fields' Build widgets included."""


def layer_units_key(index: int) -> str:
    """Returns the key of the Build page's units input for hidden layer `index` (0-based)."""
    return f"{Key.LAYER_UNITS}_{index + 1}"


def price_key(kind: str) -> str:
    """Returns the key of the Results page's price input for one kind of device ("cpu", "gpu")."""
    return f"{Key.RESULTS_COSTS}_{kind}"
