"""Build a model: layers and training settings, with live size, cost, time estimates and the Keras code.

The spec lives in session state (shared with the Train page). `ui.build_state` keeps the widgets and the
spec in step: the widgets show it, every widget's callback rebuilds it, and a preset click loads a preset.
"""

import streamlit as st

from lib.backend import backend_name
from lib.datasets import DATASETS
from lib.estimates import estimate_job
from lib.formatting import format_bytes, format_count
from lib.limits import OWNER_SETTINGS_TITLE, SPEC_LIMITS, owner_settings
from lib.links import refused_spec_problems
from lib.presets import PRESETS, TUTORIAL_LINK
from lib.spec import (
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
from ui import build_state, lesson, runtime, session
from ui.keys import Key, layer_units_key
from ui.page_data import (
    batch_size_options,
    layer_table_frame,
    matching_preset,
    steps_per_execution_options,
    units_options,
)

limits = runtime.server_limits()
spec = session.current_spec(limits, runtime.training_device_names())


def limit_help(name: str, what: str) -> str:
    """The tooltip naming a server limit (where it is set is in the server owner's expander)."""
    return f"Server limit: {getattr(limits, name):,} {what}."


def draw_hidden_layers(disabled: bool) -> None:
    """The number of hidden layers and their widths (one for all, or one per layer); disabled when locked."""
    st.slider(
        "Hidden layers",
        min_value=1,
        max_value=limits.hidden_layers,
        key=Key.HIDDEN_LAYERS,
        on_change=build_state.on_change,
        disabled=disabled,
        help=limit_help("hidden_layers", "hidden layers"),
    )
    st.toggle("Different units per layer", key=Key.PER_LAYER_UNITS, on_change=build_state.on_change, disabled=disabled)
    if st.session_state[Key.PER_LAYER_UNITS]:
        columns = st.columns(4)
        for index in range(st.session_state[Key.HIDDEN_LAYERS]):
            columns[index % 4].number_input(
                f"Layer {index + 1} units",
                min_value=1,
                max_value=limits.units,
                step=1,
                key=layer_units_key(index),
                on_change=build_state.on_change,
                disabled=disabled,
                help=limit_help("units", "units per layer"),
            )
    else:
        st.select_slider(
            "Units per hidden layer",
            options=units_options(limits.units, st.session_state[Key.UNITS]),
            key=Key.UNITS,
            on_change=build_state.on_change,
            disabled=disabled,
            help=limit_help("units", "units per layer"),
        )


def draw_layer_controls() -> None:
    """Dataset, number of hidden layers and their widths, activations."""
    build_state.control(st.selectbox, "dataset", options=list(DATASETS), format_func=lambda name: DATASETS[name].title)
    if not lesson.hidden("hidden_units"):
        draw_hidden_layers(disabled=lesson.locked("hidden_units"))
    # One widget per row: two side by side cut their values ("rel", "so") on a projector.
    build_state.control(st.selectbox, "hidden_activation", options=HIDDEN_ACTIVATIONS)
    build_state.control(st.selectbox, "output_activation", options=OUTPUT_ACTIVATIONS)


def draw_training_controls() -> None:
    """Optimizer, learning rate, epochs, batch size and the speed options."""
    build_state.control(st.selectbox, "optimizer", options=OPTIMIZERS)
    build_state.control(st.number_input, "learning_rate", min_value=1e-6, max_value=1.0, step=1e-4, format="%.6f")
    build_state.control(st.slider, "epochs", min_value=1, max_value=limits.epochs)
    batch_sizes = batch_size_options(limits.batch_size, st.session_state[Key.BATCH_SIZE])
    build_state.control(st.select_slider, "batch_size", options=batch_sizes)
    with st.expander("Speed options (the tuned presets use these)"):
        build_state.control(st.selectbox, "label_encoding", options=LABEL_ENCODINGS)
        steps = steps_per_execution_options(st.session_state[Key.STEPS_PER_EXECUTION])
        build_state.control(st.select_slider, "steps_per_execution", options=steps)
        build_state.control(st.toggle, "jit_compile")
        build_state.control(st.selectbox, "precision", options=PRECISIONS)
        build_state.control(st.toggle, "device_resident")
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
build_state.show_spec(spec)

if not lesson.hidden("preset"):
    st.pills(
        "Start from a preset (one click loads it)",
        options=list(PRESETS),
        format_func=lambda name: PRESETS[name].title,
        key=Key.PRESET,
        on_change=build_state.on_preset_click,
        disabled=lesson.locked("preset"),
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
