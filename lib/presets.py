"""Named starting points: the tutorial's two tests ("seed") and the same models tuned for speed.

The seed presets reproduce the models and training settings of the tutorial this app follows (`TUTORIAL`),
with one deliberate fix (softmax outputs, see `TUTORIAL_FIXES`). The tuned presets keep the same layers and
change only how training is fed to the device, so the two can be compared on the Results page. Pages show
presets by their titles; the names ("fashion-seed") are for links and the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib.spec import ModelSpec

# The tutorial the app follows, named the same way wherever a page mentions it.
TUTORIAL = "Purnendu Shukla's CPU-vs-GPU tutorial"
TUTORIAL_SOURCE = "Analytics Vidhya, November 2021"
TUTORIAL_URL = "https://www.analyticsvidhya.com/blog/2021/11/benchmarking-cpu-and-gpu-performance-with-tensorflow/"
TUTORIAL_LINK = f"[{TUTORIAL}]({TUTORIAL_URL}) ({TUTORIAL_SOURCE})"  # markdown: the name, linked, and its source
TUTORIAL_PRESETS = ("cifar10-seed", "fashion-seed")  # the presets that reproduce its two tests

TUTORIAL_FIXES = (
    'The tutorial used sigmoid outputs and called CIFAR-10 images "digits"; CIFAR-10 holds photos of 10 '
    "object classes (planes, cars, birds, ...). We use softmax outputs because each image has exactly one "
    "class: softmax gives a probability distribution over the classes, which is what categorical "
    "cross-entropy expects."
)


class PresetNotFoundError(KeyError):
    """The requested preset name is not one of `PRESETS`."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Preset:
    """A named spec with the text the Build page shows next to it."""

    name: str  # stable identifier, used in links and the CLI ("fashion-seed")
    title: str  # short label for a select box
    description: str  # what it is, and what differs from the tutorial
    spec: ModelSpec  # the model and training settings


_CIFAR10_SEED = ModelSpec(
    dataset="cifar10",
    hidden_units=(3000, 1000),
    hidden_activation="relu",
    output_activation="softmax",
    optimizer="sgd",
    learning_rate=0.01,
    label_encoding="one_hot",
    batch_size=32,
    epochs=10,
)

_FASHION_SEED = ModelSpec(
    dataset="fashion_mnist",
    hidden_units=(500, 500, 500, 500, 500),
    hidden_activation="relu",
    output_activation="softmax",
    optimizer="adam",
    learning_rate=0.001,
    label_encoding="integer",
    batch_size=32,
    epochs=5,
)

# Batch 2048 is 64x the seed's 32; plain SGD gets the square-root scaling, 0.01 x sqrt(64) = 0.08, which
# is stable without a warm-up (the linear rule, 0.64, needs one).
_CIFAR10_TUNED = _CIFAR10_SEED.with_changes(
    batch_size=2048, learning_rate=0.08, steps_per_execution=16, jit_compile=True, device_resident=True
)

# Batch 1024 is 32x the seed's 32. The square-root rule gives 0.001 x sqrt(32) ~ 0.0057; on Fashion-MNIST
# (5 epochs, CPU) 0.003 matched 0.001's test accuracy (0.877 vs 0.876) while 0.005 lost a point (0.865).
_FASHION_TUNED = _FASHION_SEED.with_changes(
    batch_size=1024, learning_rate=0.003, steps_per_execution=16, jit_compile=True, device_resident=True
)

_TUNING_NOTE = (
    "Same layers as the tutorial's model; only the feeding of the device changes. {batch}: each step now does "
    "enough work to keep a GPU busy instead of waiting on Python. Learning rate {rate}: fewer, larger steps per "
    "epoch need bigger steps ({rate_why}). Steps per execution 16: 16 training steps per call into the compiled "
    "function. XLA compilation fuses each step's operations. "
    "On the JAX backend the data also stays on the device: it is copied there once, shuffled there, and a whole "
    "epoch runs as one compiled call (other backends use model.fit). "
    "Precision stays float32, so accuracy is comparable with the tutorial's; try mixed_bfloat16 on a recent GPU. "
    "Accuracy after the same number of epochs can be a little lower: there are fewer weight updates per epoch."
)

PRESETS: dict[str, Preset] = {
    "cifar10-seed": Preset(
        name="cifar10-seed",
        title="CIFAR-10, as in the tutorial",
        description=(
            "The tutorial's CIFAR-10 test: Flatten -> Dense 3,000 relu -> Dense 1,000 relu -> Dense 10, SGD with "
            "learning rate 0.01, one-hot float32 labels and categorical cross-entropy, 10 epochs of batch 32. "
            + TUTORIAL_FIXES
        ),
        spec=_CIFAR10_SEED,
    ),
    "fashion-seed": Preset(
        name="fashion-seed",
        title="Fashion-MNIST, as in the tutorial",
        description=(
            "The tutorial's Fashion-MNIST test: Flatten -> 5 x Dense 500 relu -> Dense 10, Adam with learning "
            "rate 0.001, integer labels and sparse categorical cross-entropy, 5 epochs of batch 32. " + TUTORIAL_FIXES
        ),
        spec=_FASHION_SEED,
    ),
    "cifar10-tuned": Preset(
        name="cifar10-tuned",
        title="CIFAR-10, tuned for the GPU",
        description=_TUNING_NOTE.format(
            batch="Batch 2,048 instead of 32",
            rate="0.08 instead of 0.01 (SGD)",
            rate_why="square-root scaling: batch x64, rate x8; the linear rule's x64 needs a warm-up",
        ),
        spec=_CIFAR10_TUNED,
    ),
    "fashion-tuned": Preset(
        name="fashion-tuned",
        title="Fashion-MNIST, tuned for the GPU",
        description=_TUNING_NOTE.format(
            batch="Batch 1,024 instead of 32",
            rate="0.003 instead of 0.001 (Adam)",
            rate_why="batch x32, rate x3, below the square-root rule's x5.7, which lost accuracy in our test",
        ),
        spec=_FASHION_TUNED,
    ),
}


def get_preset(name: str) -> Preset:
    """Returns the preset with this name.

    Args:
        name: A key of `PRESETS`, e.g. "fashion-seed".

    Raises:
        PresetNotFoundError: The name is unknown; the message lists the known names.
    """
    if name not in PRESETS:
        raise PresetNotFoundError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return PRESETS[name]
