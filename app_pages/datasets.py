"""Datasets: what Fashion-MNIST and CIFAR-10 look like, and how their images become model inputs."""

import numpy as np
import streamlit as st

from lib import eda
from lib.backend import BackendUnavailableError
from lib.charts import class_distribution_chart, pixel_histogram_chart
from lib.datasets import (
    DATASET_NAMES,
    OWNER_FIX_TITLE,
    Dataset,
    DatasetInfo,
    DatasetUnavailableError,
    available_sources,
    get_info,
    synthetic_dataset,
)
from lib.preprocessing import encode_labels, scale_images
from lib.presets import TUTORIAL_LINK
from ui import presenter, runtime
from ui.keys import Key

HISTOGRAM_SAMPLE = 2_000  # training images the pixel histogram counts
HISTOGRAM_BINS = 32  # intensity bins of 8 levels each
ENLARGE_FACTOR = 3  # 28 px -> 84 px, 32 px -> 96 px on screen
FIRST_LABELS = 10  # labels shown with their class names, as the tutorial printed y_train[:10]
CROP = slice(10, 16)  # rows and columns of the pixel-value example (the image centre)
PREVIEW_IMAGES = 16  # generated images shown when the real dataset is missing
LABEL_COLUMNS = {"index": "Image #", "label": "Label", "class_name": "Class"}  # titles of the label tables' columns


@st.cache_data(show_spinner="Averaging the images of each class...", max_entries=len(DATASET_NAMES))
def cached_mean_images(name: str) -> np.ndarray:
    """Mean training image of each class, as uint8 for display."""
    dataset = runtime.dataset(name)
    means = eda.mean_image_per_class(dataset.x_train, dataset.y_train, dataset.info.num_classes)
    return eda.to_display_uint8(means)


def show_generated_stand_in(info: DatasetInfo, error: DatasetUnavailableError) -> None:
    """What the dataset would be, and what training uses instead, when this server has no readable copy."""
    if available_sources(info.name):
        st.warning(
            f"This server's {info.title} copy cannot be read, so training on it fails until it is replaced; on the "
            'Train page, tick "Use generated images of the same shape" to time the model meanwhile.',
            icon=":material/broken_image:",
        )
    else:
        st.info(
            f"This server has no {info.title} copy, so training uses generated images of the same shape: "
            "timings are real, accuracy is meaningless.",
            icon=":material/cloud_off:",
        )
    show_expected_shapes(info)
    show_class_names(info)
    show_generated_preview(info)
    st.subheader("What is in the data")
    st.markdown(
        f"The class balance, pixel histogram, mean image per class and preprocessing example need the real "
        f"{info.title} images; they appear here once this server has them."
    )
    with st.expander(OWNER_FIX_TITLE.format(title=info.title), icon=":material/build:"):
        st.markdown(error.reason or str(error))
        if error.fix:
            st.markdown(error.fix)


def show_expected_shapes(info: DatasetInfo) -> None:
    """The shapes Keras returns for this dataset, known without the files."""
    st.subheader("What Keras gives us")
    show_size_metrics(info, info.num_train, info.num_test, info.image_shape)
    image = ", ".join(str(size) for size in info.image_shape)
    st.code(
        f"x_train.shape  = ({info.num_train}, {image})  # dtype uint8\n"
        f"y_train.shape  = ({info.num_train},)  # dtype uint8\n"
        f"x_test.shape   = ({info.num_test}, {image})\n"
        f"y_test.shape   = ({info.num_test},)",
        language="python",
        wrap_lines=True,
    )
    st.caption(f"What keras.datasets.{info.name}.load_data() returns once this server has {info.title}.")


def show_class_names(info: DatasetInfo) -> None:
    """The label of each class and its name."""
    st.markdown(f"The {info.num_classes} classes, by label:")
    st.dataframe(eda.class_table(info), hide_index=True, column_config=LABEL_COLUMNS)


def show_generated_preview(info: DatasetInfo) -> None:
    """Images from the generator training uses without the real data, labelled as such."""
    st.subheader("What training uses here instead")
    generated = synthetic_dataset(info.name, PREVIEW_IMAGES, 1, seed=0)
    st.caption(
        f"{PREVIEW_IMAGES} generated images (random pixels), not {info.title}. Each gets a random label, so "
        "nothing in an image tells its class, and a model trained on them scores chance: "
        f"about {1 / info.num_classes:.0%} on the test images."
    )
    st.image(
        [eda.enlarge(image, ENLARGE_FACTOR) for image in generated.x_train],
        caption=[f"generated, random label: {info.class_names[label]}" for label in generated.y_train],
        width=info.image_shape[1] * ENLARGE_FACTOR,
    )


def show_size_metrics(info: DatasetInfo, num_train: int, num_test: int, image_shape: tuple[int, ...]) -> None:
    """Training and test image counts, one image's shape, and the number of classes."""
    columns = st.columns(4)
    columns[0].metric("Training images", f"{num_train:,}")
    columns[1].metric("Test images", f"{num_test:,}")
    columns[2].metric("One image", " x ".join(str(size) for size in image_shape))
    columns[3].metric("Classes", info.num_classes)


def show_shapes(dataset: Dataset) -> None:
    """What the tutorial printed after loading: array shapes and the first labels."""
    st.subheader("What Keras gives us")
    st.caption(f"Source: {dataset.source}")
    show_size_metrics(dataset.info, len(dataset.x_train), len(dataset.x_test), dataset.x_train[0].shape)
    st.code(
        f"x_train.shape  = {dataset.x_train.shape}  # dtype {dataset.x_train.dtype}\n"
        f"y_train.shape  = {dataset.y_train.shape}  # dtype {dataset.y_train.dtype}\n"
        f"x_test.shape   = {dataset.x_test.shape}\n"
        f"y_test.shape   = {dataset.y_test.shape}\n"
        f"x_train[0].shape = {dataset.x_train[0].shape}\n"
        f"y_train[:{FIRST_LABELS}] = {dataset.y_train[:FIRST_LABELS].tolist()}",
        language="python",
        wrap_lines=True,
    )
    if dataset.info.is_rgb:
        st.caption("Keras returns CIFAR-10 labels shaped (n, 1); they are flattened to (n,) like Fashion-MNIST's.")
    st.dataframe(eda.first_labels(dataset, FIRST_LABELS), hide_index=True, column_config=LABEL_COLUMNS)


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
        caption=[f"{info.class_names[dataset.y_train[index]]} (#{index:,})" for index in indices],
        width=info.image_shape[1] * ENLARGE_FACTOR,
    )


def show_class_distribution(dataset: Dataset) -> None:
    """Bars of images per class in each split."""
    with st.container(border=True):
        counts = eda.class_counts(dataset)
        st.altair_chart(class_distribution_chart(counts, presenter.chart_style()), width="stretch")
        st.caption(
            "Look at the bar heights: every class has the same number of images, so guessing gives "
            f"{1 / dataset.info.num_classes:.0%} accuracy and accuracy is a fair score."
        )


def show_pixel_histogram(dataset: Dataset) -> None:
    """How often each intensity occurs, per channel, on a sample of training images."""
    sample = dataset.x_train[:HISTOGRAM_SAMPLE]
    with st.container(border=True):
        histogram = eda.pixel_histogram(sample, HISTOGRAM_BINS)
        st.altair_chart(pixel_histogram_chart(histogram, presenter.chart_style()), width="stretch")
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
    first_class = eda.with_article(info.class_names[dataset.y_train[0]])
    st.markdown(
        f"Training image #0 is **{first_class}**. Its centre pixels{channel_note}, before and after scaling to [0, 1]:"
    )
    before, after = st.columns(2)
    before.caption(f"As loaded: {image.dtype}, values {image.min()} to {image.max()}")
    before.dataframe(channel[CROP, CROP], hide_index=False)
    scaled = scale_images(image)  # what lib.engine trains on
    after.caption(f"Scaled: {scaled.dtype}, values {scaled.min():.3f} to {scaled.max():.3f}")
    after.dataframe(scale_images(channel[CROP, CROP]), hide_index=False)

    label = int(dataset.y_train[0])
    encoded = encode_labels(dataset.y_train[:1], "one_hot", info.num_classes)[0]
    st.markdown(
        f"Its label **{label}** ({info.class_names[label]}) as a one-hot row (float32): the target that the model's "
        f"softmax output, {info.num_classes} probabilities that add up to 1, is compared with by categorical "
        "cross-entropy. The tutorial used sigmoid outputs; softmax fits data where each image has exactly one class."
    )
    st.dataframe({name: [value] for name, value in zip(info.class_names, encoded, strict=True)}, hide_index=True)

    st.markdown("Memory of the whole training set in each dtype:")
    footprint = eda.memory_footprint(dataset)
    st.dataframe(
        footprint.assign(bytes=footprint["bytes"].map("{:,}".format)),
        hide_index=True,
        column_config={
            "dtype": st.column_config.TextColumn("dtype"),
            "bytes_per_value": st.column_config.NumberColumn("Bytes per pixel", format="%d"),
            "bytes": st.column_config.TextColumn("Bytes"),
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
        wrap_lines=True,
    )


st.title("Datasets")
st.markdown(
    f"{TUTORIAL_LINK} trained the same kind of model on two small image datasets. Here is what is in them "
    "and how their pixels become the numbers a model trains on."
)
name = st.selectbox("Dataset", DATASET_NAMES, format_func=lambda n: get_info(n).title, key=Key.DATASET)
info = get_info(name)
st.markdown(info.description)
try:
    dataset = runtime.dataset(name)
except DatasetUnavailableError as error:
    dataset = None
    show_generated_stand_in(info, error)
except BackendUnavailableError as error:
    dataset = None
    st.error(str(error), icon=":material/error:")

if dataset is not None:  # no st.stop(): in lesson mode the router still draws "Next" below the page
    show_shapes(dataset)
    show_samples(dataset)
    st.subheader("What is in the data")
    show_class_distribution(dataset)
    show_pixel_histogram(dataset)
    show_mean_images(dataset)
    show_preprocessing(dataset)
