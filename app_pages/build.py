"""Build a model: layers and training settings, with live size, cost, time estimates and the Keras code.

The spec lives in session state (shared with the Train page). Widgets show it; every widget's callback
rebuilds it from all of them, so presets, shared links and the Train page can change it too.
"""

import streamlit as st

from lib.backend import backend_name
from lib.datasets import DATASETS
from lib.devices import format_bytes
from lib.estimates import estimate_job
from lib.keys import Key, layer_units_key
from lib.limits import OWNER_SETTINGS_TITLE, SPEC_LIMITS, owner_settings
from lib.links import fit_to_limits, refused_spec_problems
from lib.presets import PRESETS, TUTORIAL_LINK
from lib.spec import (
    DEFAULT_LEARNING_RATES,
    HIDDEN_ACTIVATIONS,
    LABEL_ENCODINGS,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    PRECISIONS,
    SpecError,
    count_params,
    flops_per_epoch,
    flops_per_sample,
    keras_code,
    layer_table,
    memory_estimate,
    validate_spec,
)
from lib.ui_state import (
    batch_size_options,
    build_widget_values,
    format_count,
    layer_table_frame,
    matching_preset,
    spec_from_build_widgets,
    steps_per_execution_options,
    units_options,
)
from ui import runtime, session

limits = runtime.server_limits()
spec = session.current_spec(limits, runtime.training_device_names())


def show_spec_in_widgets() -> None:
    """Sets every Build widget's value from the session's spec (before the widgets are drawn).

    The preset chooser shows the preset the model still is, and nothing once the model was changed.
    """
    current = session.current_spec(limits, runtime.training_device_names())
    for key, value in build_widget_values(current).items():
        if st.session_state.get(key) != value:
            st.session_state[key] = value
    if len(set(current.hidden_units)) > 1 or Key.PER_LAYER_UNITS not in st.session_state:
        st.session_state[Key.PER_LAYER_UNITS] = len(set(current.hidden_units)) > 1
    st.session_state[Key.PRESET] = matching_preset(current, PRESETS)


def sync_spec() -> None:
    """Widget callback: rebuilds the session's spec from the widgets.

    A preset clicked in the same rerun wins: the browser may send stale values of other widgets with the
    click (a slider hidden in per-layer mode, say), and rebuilding from them would mix two models.
    """
    if st.session_state.get(Key.PRESET_LOADED):
        return
    session.set_spec(spec_from_build_widgets(st.session_state, session.current_spec(limits, [])))


def on_optimizer_change() -> None:
    """Widget callback: a new optimizer starts from its usual learning rate."""
    st.session_state[Key.LEARNING_RATE] = DEFAULT_LEARNING_RATES[st.session_state[Key.OPTIMIZER]]
    sync_spec()


def load_preset() -> None:
    """Preset chooser callback: loads the chosen preset, fitted to this server's limits."""
    name = st.session_state[Key.PRESET]
    if name is None:
        return
    preset_spec, notices = fit_to_limits(PRESETS[name].spec, limits)
    session.set_spec(preset_spec)
    st.session_state[Key.PRESET_LOADED] = True
    st.session_state[Key.PER_LAYER_UNITS] = len(set(preset_spec.hidden_units)) > 1
    if notices:
        st.session_state[Key.LINK_NOTICES] = session.PendingNotices(
            tuple(notices), preset_spec, header=session.PRESET_NOTICES_HEADER
        )


def limit_help(name: str, what: str) -> str:
    """The tooltip naming a server limit (where it is set is in the server owner's expander)."""
    return f"Server limit: {getattr(limits, name):,} {what}."


def draw_layer_controls() -> None:
    """Dataset, number of hidden layers and their widths."""
    st.selectbox(
        "Dataset",
        options=list(DATASETS),
        format_func=lambda name: DATASETS[name].title,
        key=Key.BUILD_DATASET,
        on_change=sync_spec,
    )
    st.slider(
        "Hidden layers",
        min_value=1,
        max_value=limits.hidden_layers,
        key=Key.HIDDEN_LAYERS,
        on_change=sync_spec,
        help=limit_help("hidden_layers", "hidden layers"),
    )
    st.toggle("Different units per layer", key=Key.PER_LAYER_UNITS, on_change=sync_spec)
    if st.session_state[Key.PER_LAYER_UNITS]:
        columns = st.columns(4)
        for index in range(st.session_state[Key.HIDDEN_LAYERS]):
            columns[index % 4].number_input(
                f"Layer {index + 1} units",
                min_value=1,
                max_value=limits.units,
                step=1,
                key=layer_units_key(index),
                on_change=sync_spec,
                help=limit_help("units", "units per layer"),
            )
    else:
        st.select_slider(
            "Units per hidden layer",
            options=units_options(limits.units, st.session_state[Key.UNITS]),
            key=Key.UNITS,
            on_change=sync_spec,
            help=limit_help("units", "units per layer"),
        )
    # One widget per row: two side by side cut their values ("rel", "so") on a projector.
    st.selectbox("Hidden activation", HIDDEN_ACTIVATIONS, key=Key.HIDDEN_ACTIVATION, on_change=sync_spec)
    st.selectbox(
        "Output activation",
        OUTPUT_ACTIVATIONS,
        key=Key.OUTPUT_ACTIVATION,
        on_change=sync_spec,
        help="softmax: one class per image, probabilities that sum to 1 (what cross-entropy expects).",
    )


def draw_training_controls() -> None:
    """Optimizer, learning rate, epochs, batch size and the speed options."""
    st.selectbox("Optimizer", OPTIMIZERS, key=Key.OPTIMIZER, on_change=on_optimizer_change)
    st.number_input(
        "Learning rate",
        min_value=1e-6,
        max_value=1.0,
        step=1e-4,
        format="%.6f",
        key=Key.LEARNING_RATE,
        on_change=sync_spec,
    )
    st.slider(
        "Epochs",
        min_value=1,
        max_value=limits.epochs,
        key=Key.BUILD_EPOCHS,
        on_change=sync_spec,
        help=limit_help("epochs", "epochs"),
    )
    st.select_slider(
        "Batch size",
        options=batch_size_options(limits.batch_size, st.session_state[Key.BATCH_SIZE]),
        key=Key.BATCH_SIZE,
        on_change=sync_spec,
        help=limit_help("batch_size", "samples per step"),
    )
    with st.expander("Speed options (the tuned presets use these)"):
        st.selectbox(
            "Labels",
            LABEL_ENCODINGS,
            key=Key.LABEL_ENCODING,
            on_change=sync_spec,
            help="integer labels + sparse cross-entropy, or one-hot float32 labels (the tutorial's CIFAR-10 test).",
        )
        st.select_slider(
            "Steps per execution",
            options=steps_per_execution_options(st.session_state[Key.STEPS_PER_EXECUTION]),
            key=Key.STEPS_PER_EXECUTION,
            on_change=sync_spec,
            help="Training steps per call into the compiled function: fewer Python round trips per epoch.",
        )
        st.toggle(
            "XLA compilation (jit_compile)",
            key=Key.JIT_COMPILE,
            on_change=sync_spec,
            help="XLA compiles each training step into fused kernels: fewer, faster operations per step.",
        )
        st.selectbox(
            "Precision",
            PRECISIONS,
            key=Key.PRECISION,
            on_change=sync_spec,
            help="mixed_bfloat16 computes hidden layers in bfloat16: faster on recent GPUs.",
        )
        st.toggle(
            "Keep the data on the device",
            key=Key.DEVICE_RESIDENT,
            on_change=sync_spec,
            help="JAX backend only; other backends train with model.fit.",
        )
        st.markdown(SPEED_OPTIONS_EXPLAINED)


SPEED_OPTIONS_EXPLAINED = """
- **Larger batch**: each step does more work, so the device computes instead of waiting for Python.
- **Steps per execution**: several training steps per call into the compiled function, which removes most of the
  per-step overhead at small batches.
- **XLA compilation**: the whole step becomes one compiled program with fused operations.
- **Mixed precision** (`mixed_bfloat16`): hidden layers compute in bfloat16, twice the matrix throughput on
  recent GPUs, with float32 outputs and weights.
- **Data on the device**: the images are copied to the device once and shuffled there, and a whole epoch runs as
  one compiled call, so no batch crosses from the host (JAX backend; elsewhere `model.fit`).
"""


def draw_live_numbers() -> None:
    """Parameters, FLOPs, memory, problems with the limits and epoch-time estimates."""
    info = DATASETS[spec.dataset]
    params = count_params(spec)
    memory = memory_estimate(spec)
    # A row that wraps: as many metrics side by side as fit whole (four, two, or one on a projector).
    metrics = st.container(horizontal=True)
    metrics.metric("Parameters", f"{params:,}", help=limit_help("params", "parameters"))
    metrics.metric(
        "Training FLOPs per sample",
        format_count(flops_per_sample(spec), "FLOP"),
        help="Forward + backward pass: 6 x (inputs x outputs) summed over the Dense layers.",
    )
    metrics.metric(
        "FLOPs per epoch",
        format_count(flops_per_epoch(spec, info.num_train), "FLOP"),
        help=f"For all {info.num_train:,} training images of {info.title}.",
    )
    metrics.metric(
        "Memory per training step",
        format_bytes(memory.total_bytes),
        help=(
            f"Weights {format_bytes(memory.weights_bytes)}, gradients {format_bytes(memory.gradients_bytes)}, "
            f"optimizer state {format_bytes(memory.optimizer_bytes)}, one batch's activations "
            f"{format_bytes(memory.activations_bytes)}. A lower bound: frameworks keep extra temporaries."
        ),
    )
    try:
        validate_spec(spec, limits)
    except SpecError:
        problems = refused_spec_problems(spec, limits)
        st.error("This model passes a server limit:\n" + "\n".join(f"- {p}" for p in problems))
    draw_estimates(info.num_train)


def draw_layers_and_code() -> None:
    """The layer table and the Keras code, at the page's full width so that their lines show whole."""
    with st.container(border=True):
        st.markdown("**Layers**")
        st.dataframe(layer_table_frame(layer_table(spec)), hide_index=True, width="stretch")
        st.caption("Look at where the parameters are: the first Dense layer sees every pixel.")
    with st.expander("Keras code that builds this model", expanded=True):
        # The longest lines still wrap on a projector's screen rather than hide behind a scroll bar.
        st.code(keras_code(spec), language="python", wrap_lines=True)


def draw_estimates(num_train: int) -> None:
    """Estimated training time on each device: the estimator the Train page and the job queue use."""
    runs = runtime.finished_runs()
    present = runtime.device_names()
    devices = list(dict.fromkeys([*present, *sorted(set(runs["device"]))]))
    estimate = estimate_job(spec, num_train, devices, runs, overhead_s=0.0, backend=backend_name())
    with st.container(border=True):
        st.markdown(f"**Estimated training time** (all {num_train:,} training images per epoch)")
        st.dataframe(
            {
                "Device": [
                    d.device + ("" if d.device in present else " (not on this server)") for d in estimate.devices
                ],
                "Time per epoch": [d.epoch_text for d in estimate.devices],
                f"All {spec.epochs} epochs": [d.total_text for d in estimate.devices],
                "Based on": [d.basis_text for d in estimate.devices],
            },
            hide_index=True,
            width="stretch",
        )
        st.caption(
            "Each step multiplies its batch through the layers, updates every weight and calls the compiled step. "
            "At batch 32 an epoch has 32 times the steps of batch 1,024, so the same model takes longer per epoch. "
            "Past runs on this server calibrate the estimate; the Train page and the queue use the same one."
        )


st.title("Build a model")
st.caption(
    "Pick a preset or move the sliders: every number on the right follows your model as you change it. "
    f'The presets marked "as in the tutorial" reproduce {TUTORIAL_LINK}.'
)
session.show_link_notices()
st.session_state.pop(Key.PRESET_LOADED, None)  # every widget callback of this rerun has run
show_spec_in_widgets()

st.pills(
    "Start from a preset (one click loads it)",
    options=list(PRESETS),
    format_func=lambda name: PRESETS[name].title,
    key=Key.PRESET,
    on_change=load_preset,
)
preset_name = matching_preset(spec, PRESETS)
if preset_name:
    st.caption(f"**{PRESETS[preset_name].title}.** {PRESETS[preset_name].description}")
else:
    st.caption("Your own model: it matches no preset.")

controls, numbers = st.columns([2, 3], gap="large")
with controls:
    with st.container(border=True):
        draw_layer_controls()
    with st.container(border=True):
        draw_training_controls()
    st.caption(
        f"Server limits: {limits.hidden_layers:,} hidden layers, {limits.units:,} units per layer, "
        f"{limits.params:,} parameters, {limits.epochs:,} epochs, batch {limits.batch_size:,}."
    )
    with st.expander(OWNER_SETTINGS_TITLE):
        st.markdown(owner_settings(limits, SPEC_LIMITS))
with numbers:
    draw_live_numbers()
    st.page_link("app_pages/train.py", label="Train this model", icon=":material/play_arrow:")
draw_layers_and_code()

session.write_link(spec, session.run_settings())
