"""Datasets: what Fashion-MNIST and CIFAR-10 look like, and how their images become model inputs."""

import numpy as np
import streamlit as st

from lib import eda
from lib.backend import BackendUnavailableError
from lib.charts import class_distribution_chart, pixel_histogram_chart
from lib.datasets import (
    DATASET_NAMES,
    Dataset,
    DatasetInfo,
    DatasetUnavailableError,
    available_sources,
    get_info,
    load_dataset,
)
from lib.keys import Key
from ui import runtime

HISTOGRAM_SAMPLE = 2_000  # training images the pixel histogram counts
HISTOGRAM_BINS = 32  # intensity bins of 8 levels each
ENLARGE_FACTOR = 3  # 28 px -> 84 px, 32 px -> 96 px on screen
FIRST_LABELS = 10  # labels shown with their class names, as the tutorial printed y_train[:10]
CROP = slice(10, 16)  # rows and columns of the pixel-value example (the image centre)


@st.cache_resource(show_spinner="Loading the dataset with its Keras loader...")
def cached_dataset(name: str) -> Dataset:
    """Loads a dataset once per server process; every session shares it and nobody mutates it."""
    if available_sources(name):  # Keras' loader reads it: wait for the server's one import of Keras
        runtime.wait_for_backend()
    return load_dataset(name)


@st.cache_data(show_spinner="Averaging the images of each class...", max_entries=len(DATASET_NAMES))
def cached_mean_images(name: str) -> np.ndarray:
    """Mean training image of each class, as uint8 for display."""
    dataset = cached_dataset(name)
    means = eda.mean_image_per_class(dataset.x_train, dataset.y_train, dataset.info.num_classes)
    return eda.to_display_uint8(means)


def show_unavailable(info: DatasetInfo, error: DatasetUnavailableError) -> None:
    """Explains why a dataset cannot be shown and how to get it."""
    st.error(error.reason or str(error), icon=":material/error:")
    if error.fix:
        st.info(error.fix, icon=":material/build:")
    st.caption(
        f"The other pages keep working; pick another dataset above to explore real data instead of {info.title}."
    )


def show_shapes(dataset: Dataset) -> None:
    """What the tutorial printed after loading: array shapes and the first labels."""
    st.subheader("What Keras gives us")
    st.caption(f"Source: {dataset.source}")
    columns = st.columns(4)
    columns[0].metric("Training images", f"{len(dataset.x_train):,}")
    columns[1].metric("Test images", f"{len(dataset.x_test):,}")
    columns[2].metric("One image", " x ".join(str(size) for size in dataset.x_train[0].shape))
    columns[3].metric("Classes", dataset.info.num_classes)
    st.code(
        f"x_train.shape  = {dataset.x_train.shape}  # dtype {dataset.x_train.dtype}\n"
        f"y_train.shape  = {dataset.y_train.shape}  # dtype {dataset.y_train.dtype}\n"
        f"x_test.shape   = {dataset.x_test.shape}\n"
        f"y_test.shape   = {dataset.y_test.shape}\n"
        f"x_train[0].shape = {dataset.x_train[0].shape}\n"
        f"y_train[:{FIRST_LABELS}] = {dataset.y_train[:FIRST_LABELS].tolist()}",
        language="python",
    )
    if dataset.info.is_rgb:
        st.caption("Keras returns CIFAR-10 labels shaped (n, 1); they are flattened to (n,) like Fashion-MNIST's.")
    st.dataframe(eda.first_labels(dataset, FIRST_LABELS), hide_index=True)


def show_samples(dataset: Dataset) -> None:
    """A grid of training images, optionally of chosen classes only."""
    st.subheader("Sample images")
    info = dataset.info
    chosen = st.multiselect(
        "Show classes (none = all)",
        options=list(range(info.num_classes)),
        format_func=lambda index: info.class_names[index],
        key=Key.SAMPLE_CLASS_FILTER,
    )
    count = st.slider("Images", min_value=8, max_value=48, value=16, step=8, key=Key.SAMPLE_COUNT)
    indices = eda.sample_indices(dataset.y_train, chosen, count, seed=0)
    classes = ", ".join(info.class_names[index] for index in chosen) or "all classes"
    st.caption(f"{len(indices)} random training images of {classes}.")
    st.image(
        [eda.enlarge(dataset.x_train[index], ENLARGE_FACTOR) for index in indices],
        caption=[f"{info.class_names[dataset.y_train[index]]} (#{index})" for index in indices],
        width=info.image_shape[1] * ENLARGE_FACTOR,
    )


def show_class_distribution(dataset: Dataset) -> None:
    """Bars of images per class in each split."""
    with st.container(border=True):
        st.altair_chart(class_distribution_chart(eda.class_counts(dataset)), width="stretch")
        st.caption(
            "Look at the bar heights: every class has the same number of images, so guessing gives "
            f"{1 / dataset.info.num_classes:.0%} accuracy and accuracy is a fair score."
        )


def show_pixel_histogram(dataset: Dataset) -> None:
    """How often each intensity occurs, per channel, on a sample of training images."""
    sample = dataset.x_train[:HISTOGRAM_SAMPLE]
    with st.container(border=True):
        st.altair_chart(pixel_histogram_chart(eda.pixel_histogram(sample, HISTOGRAM_BINS)), width="stretch")
        if dataset.info.is_rgb:
            look_at = "the three channels spread over the whole range and overlap: colour alone rarely tells classes"
        else:
            look_at = "the tall bar at 0: most pixels are black background, and the object pixels spread above it"
        st.caption(f"Look at {look_at}. Counted on the first {len(sample):,} training images.")


def show_mean_images(dataset: Dataset) -> None:
    """The average training image of each class."""
    means = cached_mean_images(dataset.info.name)
    with st.container(border=True):
        st.markdown("**Mean image per class**")
        st.image(
            [eda.enlarge(image, ENLARGE_FACTOR) for image in means],
            caption=list(dataset.info.class_names),
            width=dataset.info.image_shape[1] * ENLARGE_FACTOR,
        )
        st.caption(
            "Look at which averages are sharp (the objects sit in the same place) and which look alike: "
            "classes whose averages look alike are the ones a model confuses."
        )


def show_preprocessing(dataset: Dataset) -> None:
    """One real image and label before and after preprocessing, and what each dtype costs in memory."""
    st.subheader("Preprocessing: from uint8 pixels to model inputs")
    info = dataset.info
    image = dataset.x_train[0]
    channel = image[..., 0] if info.is_rgb else image
    channel_note = " (red channel)" if info.is_rgb else ""
    st.markdown(
        f"Training image #0 is a **{info.class_names[dataset.y_train[0]]}**. Its centre pixels{channel_note}, "
        "before and after scaling to [0, 1]:"
    )
    before, after = st.columns(2)
    before.caption(f"As loaded: {image.dtype}, values {image.min()} to {image.max()}")
    before.dataframe(channel[CROP, CROP], hide_index=False)
    scaled = eda.scale_to_unit(image)
    after.caption(f"Scaled: {scaled.dtype}, values {scaled.min():.3f} to {scaled.max():.3f}")
    after.dataframe(eda.scale_to_unit(channel[CROP, CROP]), hide_index=False)

    label = int(dataset.y_train[0])
    encoded = eda.one_hot(dataset.y_train[:1], info.num_classes)[0]
    st.markdown(
        f"Its label **{label}** ({info.class_names[label]}) as a one-hot row (float32), for a categorical loss:"
    )
    st.dataframe({name: [value] for name, value in zip(info.class_names, encoded, strict=True)}, hide_index=True)

    st.markdown("Memory of the whole training set in each dtype:")
    st.dataframe(
        eda.memory_footprint(dataset),
        hide_index=True,
        column_config={
            "dtype": st.column_config.TextColumn("dtype"),
            "bytes_per_value": st.column_config.NumberColumn("Bytes per pixel", format="%d"),
            "bytes": st.column_config.NumberColumn("Bytes", format="%d"),
            "mib": st.column_config.NumberColumn("MiB", format="%.1f"),
            "ratio": st.column_config.NumberColumn("x uint8", format="%.0fx"),
            "note": st.column_config.TextColumn("When"),
        },
    )
    st.markdown(
        "In NumPy, `x_train / 255` on uint8 images gives **float64**: 8 bytes per pixel, twice what the "
        "model computes in. So we keep the images as uint8 (1 byte per pixel, loaded once per server) and "
        "convert each batch to float32 when it is used:"
    )
    st.code(
        "x = x_train / 255                    # float64, 8 bytes per pixel: avoid\n"
        "x = x_train.astype('float32') / 255  # float32, 4 bytes per pixel\n"
        "batch = x_train[i : i + 32].astype('float32') / 255  # per batch: the set stays uint8",
        language="python",
    )


st.title("Datasets")
st.markdown(
    "The tutorial trained the same kind of model on two small image datasets. Here is what is in them "
    "and how their pixels become the numbers a model trains on."
)
name = st.selectbox("Dataset", DATASET_NAMES, format_func=lambda n: get_info(n).title, key=Key.DATASET)
info = get_info(name)
try:
    dataset = cached_dataset(name)
except DatasetUnavailableError as error:
    show_unavailable(info, error)
    st.stop()
except BackendUnavailableError as error:
    st.error(str(error), icon=":material/error:")
    st.stop()

show_shapes(dataset)
show_samples(dataset)
st.subheader("What is in the data")
show_class_distribution(dataset)
show_pixel_histogram(dataset)
show_mean_images(dataset)
show_preprocessing(dataset)
