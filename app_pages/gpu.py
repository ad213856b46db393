"""What is a GPU? The app's first lesson: many simple cores, throughput versus latency, and a live race."""

import threading

import streamlit as st

from lib.backend import BackendUnavailableError, backend_name, library_versions
from lib.ceilings import matmul_flops
from lib.charts import matmul_gflops_chart, matmul_time_chart
from lib.devices import (
    DeviceNotFoundError,
    cuda_build_info,
    cuda_build_summary,
    device_table,
    gpu_setup_hint,
    has_gpu,
)
from lib.hardware import usable_cores
from lib.limits import OWNER_SETTINGS_TITLE, LimitConfigError, ServerLimits, load_limits, owner_settings
from lib.matmul import (
    DTYPES,
    DeviceOutOfMemoryError,
    MatmulDtypeError,
    MatmulSizeError,
    crossover_size,
    matmul_sizes,
    speedup_at_largest,
    sweep,
)
from ui import presenter, runtime
from ui.keys import Key

DEFAULT_LARGEST_N = 1024  # largest N preselected: a few seconds on a small CPU
REPEATS = 5  # timed products per device and N; the median is shown
# The sweep's columns (`lib.matmul.MatmulTiming`) as the table of measured numbers titles them.
MEASURED_COLUMNS = {
    "device": "Device",
    "n": "N",
    "dtype": "Element type",
    "seconds": "Median time (s)",
    "gflops_per_s": "GFLOP/s (billions of operations per second)",
    "repeats": "Timed products",
}
BACKEND_WAIT_MESSAGE = (
    "Keras is still loading on this server (once after each start): the race starts when it is ready..."
)


@st.cache_resource(show_spinner=False)
def cached_build_info():
    """Reads how the backend library was built, once per process."""
    return cuda_build_info()


@st.cache_resource
def matmul_lock():
    """One lock per server: two sessions timing at once would slow each other and spoil both measurements."""
    return threading.Lock()


def explain_gpu(cpu_cores: int) -> None:
    """The lesson in words: what a GPU is and when it wins."""
    st.markdown(
        "A **CPU** (central processing unit) runs your operating system, your browser and this web server. "
        "A **GPU** (graphics processing unit) was first built to colour millions of pixels per frame, and "
        "that same design turned out to suit deep learning."
    )
    cpu, gpu = st.columns(2)
    with cpu.container(border=True):
        st.markdown(
            f"**CPU: a few complex cores** (this server has {cpu_cores})\n\n"
            "- Each core is large: big caches, branch prediction, out-of-order execution.\n"
            "- Built for **latency**: finish one chain of dependent steps as soon as possible.\n"
            "- Good at varied, branching work: web requests, databases, the Python interpreter."
        )
    with gpu.container(border=True):
        st.markdown(
            "**GPU: thousands of simple cores** (an NVIDIA H100 has 16,896 FP32 cores in 132 groups)\n\n"
            "- Each core is small; groups of them run the same instruction on different data.\n"
            "- Built for **throughput**: as many independent operations per second as possible.\n"
            "- Has its own fast memory; data must be copied there before it can work on it."
        )
    st.markdown(
        "**Parallelism is the key.** A matrix product, the heart of every neural-network layer, is made of "
        "independent dot products: each output number can be computed at the same time as all the others. "
        "A GPU hands them to thousands of cores at once.\n\n"
        "**Throughput, not latency.** Starting work on a GPU has a fixed cost (launching a kernel, copying "
        "data), a few microseconds to milliseconds. For one small task the CPU answers sooner; a GPU wins when "
        "there is enough work to keep its cores busy. The demo below shows exactly where that happens.\n\n"
        "**Where GPUs are used:** training and serving AI models; high-performance computing (weather, "
        "fluid dynamics, molecular simulation, large linear algebra); virtual desktops (VDI), where one "
        "data-centre GPU renders the screens of many remote users; and, of course, graphics and video."
    )


def show_this_machine(devices) -> None:
    """The device table and how the backend was built; until the backend is loaded, where the list comes from."""
    st.subheader("This machine")
    st.dataframe(device_table(devices), hide_index=True)
    error = runtime.backend_error()
    if error is not None:
        st.error(error, icon=":material/error:")
    if not runtime.backend_ready():
        st.caption(runtime.device_list_note())
        return
    build_info = cached_build_info()
    versions = library_versions()
    backend = backend_name()
    st.caption(
        f"Keras {versions.get('keras', '?')} on the **{backend}** backend "
        f"({backend} {versions.get(backend, '?')}), Python {versions['python']}. {cuda_build_summary(build_info)}"
    )
    if not has_gpu(devices):
        st.info(f"**No GPU found.** {gpu_setup_hint(build_info)}", icon=":material/info:")


def choose_sizes(limits: ServerLimits) -> tuple[list[int], str]:
    """The demo's controls: the range of N and the element type. Returns the chosen sizes and dtype."""
    max_n = limits.matmul_n
    options = matmul_sizes(max_n)
    default_high = max([size for size in options if size <= DEFAULT_LARGEST_N], default=options[0])
    low, high = st.select_slider(
        "Matrix sizes N (each product multiplies two N x N matrices)",
        options=options,
        value=(options[0], default_high),
        key=Key.MATMUL_SIZES,
        help="Every power of two in the range is timed on every device.",
    )
    gflop = matmul_flops(high) / 1e9
    st.caption(
        f"This server allows N up to {max_n:,}. "
        f"Work grows as N³: N = {high:,} is {gflop:,.2f} GFLOP per product, "
        f"that is {gflop:,.2f} billion multiplications and additions."
    )
    with st.expander(OWNER_SETTINGS_TITLE):
        st.markdown(owner_settings(limits, ("matmul_n",)))
    dtype = st.selectbox(
        "Element type",
        DTYPES,
        key=Key.MATMUL_DTYPE,
        help=(
            "float32 is what training uses by default. GPUs with tensor cores are much faster in float16 and "
            "bfloat16. On NVIDIA GPUs since Ampere, TensorFlow and JAX run float32 products on tensor cores in "
            "TF32 (a shorter mantissa) by default; PyTorch keeps full float32."
        ),
    )
    return [size for size in options if low <= size <= high], dtype


def backend_loaded() -> bool:
    """Waits for Keras to finish loading (once per server start); shows why and returns False when it cannot."""
    try:
        if runtime.backend_ready():
            return True
        with st.spinner(BACKEND_WAIT_MESSAGE):
            runtime.wait_for_backend()
    except BackendUnavailableError as error:
        st.error(str(error), icon=":material/error:")
        return False
    return True


def run_sweep(sizes: list[int], dtype: str, limits) -> None:
    """Times the products on every device and keeps the results in the session, or shows why it could not."""
    if not backend_loaded():
        return
    device_names = runtime.device_names()
    total = len(device_names) * len(sizes)
    progress = st.progress(0.0, text="Waiting for the devices...")
    done = []

    def report(timing) -> None:
        done.append(timing)
        progress.progress(len(done) / total, text=f"{timing.device}, N = {timing.n:,}: {timing.seconds:.3g} s")

    lock = matmul_lock()
    if not lock.acquire(blocking=False):
        progress.progress(0.0, text="Another visitor is timing right now; waiting for them to finish...")
        lock.acquire()
    try:
        df = sweep(device_names, sizes, REPEATS, dtype, limits, available=device_names, on_timing=report)
    except (MatmulSizeError, MatmulDtypeError, DeviceNotFoundError, DeviceOutOfMemoryError) as error:
        st.error(str(error), icon=":material/error:")
        return
    finally:
        lock.release()
        progress.empty()
    st.session_state[Key.MATMUL_RESULTS] = df


def show_results(df, gpu_present: bool) -> None:
    """Charts of the last sweep and a sentence on where the GPU overtakes the CPU."""
    if gpu_present:
        crossover = crossover_size(df)
        if crossover is None:
            st.warning(
                "In this range the GPU did not stay ahead of the CPU: the matrices are too small to fill its "
                "cores, so launch overhead dominates. Try larger N.",
                icon=":material/speed:",
            )
        else:
            st.success(
                f"**The GPU overtakes the CPU from N = {crossover:,} on.** At N = {df['n'].max():,} it is "
                f"{speedup_at_largest(df):,.1f} times faster. Below that size, the CPU answers sooner.",
                icon=":material/speed:",
            )
    else:
        st.info(
            "**Only the CPU was timed**: no GPU is visible to Keras here (*This machine* above says how to change "
            "that), so the charts show how the CPU's speed grows with N, with nothing to race.",
            icon=":material/info:",
        )
    # One chart per row: side by side, a projector's screen leaves each chart too narrow to read its axes.
    with st.container(border=True, key=Key.MATMUL_TIME_CHART):
        st.altair_chart(matmul_time_chart(df, presenter.chart_style()), width="stretch")
        st.caption("Both axes are logarithmic. Where a line is flat, fixed overhead, not arithmetic, sets the time.")
    with st.container(border=True, key=Key.MATMUL_GFLOPS_CHART):
        st.altair_chart(matmul_gflops_chart(df, presenter.chart_style()), width="stretch")
        st.caption("Small products cannot keep many cores busy: throughput climbs with N until the device is full.")
    with st.expander("The measured numbers"):
        st.dataframe(df, hide_index=True, column_config=MEASURED_COLUMNS)


def draw_matmul_race(limits: ServerLimits) -> None:
    """The live demo: sizes, the race button, and the results once a race has run."""
    st.subheader("Live demo: a matrix-product race")
    st.markdown(
        "Each device multiplies two random N x N matrices: 2·N³ floating-point operations. "
        f"Every product is run once to warm up, then {REPEATS} times; the median time is kept."
    )
    sizes, dtype = choose_sizes(limits)
    label = f"Run on {', '.join(runtime.device_names())}"
    if st.button(label, key=Key.MATMUL_RUN, type="primary", icon=":material/play_arrow:"):
        run_sweep(sizes, dtype, limits)
    results = st.session_state.get(Key.MATMUL_RESULTS)
    if results is not None and not results.empty:  # a sweep ran, so the backend is loaded
        show_results(results, has_gpu(runtime.devices()))


st.title("What is a GPU?")

try:
    server_limits = load_limits()
except LimitConfigError as error:
    server_limits = None  # no st.stop(): the explanation still shows, and a lesson's "Next" below the page
    st.error(str(error), icon=":material/error:")

explain_gpu(usable_cores())
show_this_machine(runtime.devices())
if server_limits is not None:
    draw_matmul_race(server_limits)
