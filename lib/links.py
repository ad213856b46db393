"""Shareable links: a model spec and run settings as URL query parameters, and back.

A teacher builds a model, copies the address bar and sends it; the link opens the same model (as
TensorFlow Playground does). Parsing is pure: it takes the query parameters as a mapping of strings
and returns the spec plus readable notices for everything it ignored or clamped, never an exception.

Parameter names are short and stable, e.g.
`?dataset=fashion_mnist&layers=5&units=500&act=relu&out=softmax&opt=adam&lr=0.001&batch=32&epochs=5`.
`units` is one number (the same for every hidden layer, `layers` of them) or a comma list per layer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lib.limits import ServerLimits
from lib.spec import (
    HIDDEN_ACTIVATIONS,
    LABEL_ENCODINGS,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    PRECISIONS,
    ModelSpec,
    clamp_to_limits,
    dataset_names,
)

MAX_LEARNING_RATE = 1.0  # larger steps only diverge; a link asking for more is clamped
DEVICE_PATTERN = re.compile(r"^(cpu|gpu):(\d{1,2}|all)$")  # "gpu:all": data parallel over all GPUs

# Query parameter name -> (ModelSpec field, allowed values), for the fields that map one to one;
# the dataset's allowed values come from the dataset registry when a link is read.
CHOICE_PARAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dataset": ("dataset", ()),
    "act": ("hidden_activation", HIDDEN_ACTIVATIONS),
    "out": ("output_activation", OUTPUT_ACTIVATIONS),
    "opt": ("optimizer", OPTIMIZERS),
    "labels": ("label_encoding", LABEL_ENCODINGS),
    "precision": ("precision", PRECISIONS),
}
INT_PARAMS: dict[str, str] = {
    "batch": "batch_size",
    "epochs": "epochs",
    "seed": "seed",
    "spe": "steps_per_execution",
}
SPEC_PARAMS = (*CHOICE_PARAMS, *INT_PARAMS, "layers", "units", "lr", "jit", "resident")
RUN_PARAMS = ("preset", "devices", "samples")
KNOWN_PARAMS = (*SPEC_PARAMS, *RUN_PARAMS)


@dataclass(frozen=True)
class RunSettings:
    """Training-run choices that are not part of the model spec."""

    devices: tuple[str, ...] = ()  # devices to train on, "cpu:0", "gpu:0"; empty = not chosen
    sample_limit: int | None = None  # training samples to use; None = the whole training set


def spec_to_query_params(
    spec: ModelSpec, settings: RunSettings | None = None, preset: str | None = None
) -> dict[str, str]:
    """Encodes a spec (and optionally run settings and the preset name) as query parameters.

    Args:
        spec: The model and training configuration.
        settings: Devices and sample limit; left out when None.
        preset: The preset the spec started from; left out when None.

    Returns:
        Parameter name -> string value; `spec_from_query_params` reads it back to an equal spec.
    """
    params: dict[str, str] = {}
    if preset:
        params["preset"] = preset
    for name, (field_name, _) in CHOICE_PARAMS.items():
        params[name] = str(getattr(spec, field_name))
    params.update(_units_params(spec.hidden_units))
    params["lr"] = f"{spec.learning_rate:g}"
    for name, field_name in INT_PARAMS.items():
        params[name] = str(getattr(spec, field_name))
    params["jit"] = "1" if spec.jit_compile else "0"
    params["resident"] = "1" if spec.device_resident else "0"
    if settings is not None:
        if settings.devices:
            params["devices"] = ",".join(settings.devices)
        if settings.sample_limit is not None:
            params["samples"] = str(settings.sample_limit)
    return params


def spec_from_query_params(
    params: Mapping[str, Any], limits: ServerLimits, base: ModelSpec | None = None
) -> tuple[ModelSpec, list[str]]:
    """Reads a spec from query parameters, ignoring what is invalid and clamping what is too large.

    Args:
        params: Query parameter name -> value (a string, or a list of strings of which the last counts).
        limits: The server's limits; values beyond them are clamped.
        base: The spec to start from (a preset's, say); the default `ModelSpec()` when None.

    Returns:
        The spec and one readable notice per ignored or clamped parameter (empty when all was fine).
    """
    values = {name: _last(value) for name, value in params.items()}
    notices = [
        f"Ignored the link parameter '{name}': this app does not know it."
        for name in values
        if name not in KNOWN_PARAMS
    ]
    spec = base or ModelSpec()
    changes: dict[str, Any] = {}
    for name, (field_name, choices) in CHOICE_PARAMS.items():
        if name in values:
            allowed = dataset_names() if name == "dataset" else choices
            _take(changes, field_name, _parse_choice(name, values[name], allowed), notices)
    for name, field_name in INT_PARAMS.items():
        if name in values:
            _take(changes, field_name, _parse_int(name, values[name], minimum=0 if name == "seed" else 1), notices)
    if "lr" in values:
        _take(changes, "learning_rate", _parse_learning_rate(values["lr"]), notices)
    if "jit" in values:
        _take(changes, "jit_compile", _parse_flag("jit", values["jit"]), notices)
    if "resident" in values:
        _take(changes, "device_resident", _parse_flag("resident", values["resident"]), notices)
    if "units" in values or "layers" in values:
        _take(changes, "hidden_units", _parse_units(values, len(spec.hidden_units), spec.hidden_units), notices)
    spec = spec.with_changes(**changes)
    spec, clamp_notices = clamp_to_limits(spec, limits)
    return spec, notices + list(clamp_notices)


def run_settings_from_query_params(
    params: Mapping[str, Any], limits: ServerLimits, available_devices: tuple[str, ...] | list[str]
) -> tuple[RunSettings, list[str]]:
    """Reads the devices and the sample limit from query parameters.

    Args:
        params: Query parameter name -> value, as for `spec_from_query_params`.
        limits: The server's limits; a sample limit beyond `limits.samples` is clamped.
        available_devices: Devices this server has; others in the link are dropped with a notice.

    Returns:
        The settings and one readable notice per ignored or clamped value.
    """
    values = {name: _last(value) for name, value in params.items()}
    notices: list[str] = []
    devices: tuple[str, ...] = ()
    if "devices" in values:
        devices, device_notices = _parse_devices(values["devices"], tuple(available_devices))
        notices += device_notices
    sample_limit = None
    if "samples" in values:
        parsed = _parse_int("samples", values["samples"], minimum=1)
        if isinstance(parsed, _Invalid):
            notices.append(parsed.notice)
        elif parsed > limits.samples:
            notices.append(f"The link asked for {parsed:,} training samples; this server allows {limits.samples:,}.")
            sample_limit = limits.samples
        else:
            sample_limit = parsed
    return RunSettings(devices=devices, sample_limit=sample_limit), notices


def preset_from_query_params(
    params: Mapping[str, Any], preset_names: list[str] | tuple[str, ...]
) -> tuple[str | None, list[str]]:
    """Reads the preset name a link starts from.

    Args:
        params: Query parameter name -> value.
        preset_names: The presets this app has.

    Returns:
        The preset name (None when the link names none or an unknown one) and notices.
    """
    if "preset" not in params:
        return None, []
    name = _last(params["preset"])
    if name in preset_names:
        return name, []
    return None, [f"Ignored the link's preset {name!r}: choose one of {', '.join(preset_names)}."]


def _units_params(hidden_units: tuple[int, ...]) -> dict[str, str]:
    """`layers` + one `units` number when all layers match, else a comma list per layer."""
    if hidden_units and len(set(hidden_units)) == 1:
        return {"layers": str(len(hidden_units)), "units": str(hidden_units[0])}
    return {"units": ",".join(str(units) for units in hidden_units)}


def _last(value: Any) -> str:
    """The value Streamlit would give: the last of repeated parameters, as a stripped string."""
    if isinstance(value, list | tuple):
        value = value[-1] if value else ""
    return str(value).strip()


@dataclass(frozen=True)
class _Invalid:
    """A parameter value that could not be used, with the notice saying why."""

    notice: str


def _take(changes: dict[str, Any], field_name: str, parsed: Any, notices: list[str]) -> None:
    """Keeps a parsed value, or records its notice when the parser said it was invalid."""
    if isinstance(parsed, _Invalid):
        notices.append(parsed.notice)
    else:
        changes[field_name] = parsed


def _parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str | _Invalid:
    value = raw.lower()
    if value in choices:
        return value
    return _Invalid(f"Ignored {name}={raw!r} from the link: choose one of {', '.join(choices)}.")


def _parse_int(name: str, raw: str, minimum: int) -> int | _Invalid:
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        return _Invalid(f"Ignored {name}={raw!r} from the link: it is not a whole number.")
    if value < minimum:
        return _Invalid(f"Ignored {name}={raw!r} from the link: it must be at least {minimum}.")
    return value


def _parse_learning_rate(raw: str) -> float | _Invalid:
    try:
        value = float(raw)
    except ValueError:
        return _Invalid(f"Ignored lr={raw!r} from the link: it is not a number.")
    if not math.isfinite(value) or value <= 0:
        return _Invalid(f"Ignored lr={raw!r} from the link: the learning rate must be a positive number.")
    if value > MAX_LEARNING_RATE:
        return _Invalid(f"Ignored lr={raw!r} from the link: learning rates above {MAX_LEARNING_RATE:g} only diverge.")
    return value


def _parse_flag(name: str, raw: str) -> bool | _Invalid:
    flags = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}
    if raw.lower() in flags:
        return flags[raw.lower()]
    return _Invalid(f"Ignored {name}={raw!r} from the link: use 1 or 0.")


def _parse_units(
    values: dict[str, str], default_layers: int, default_units: tuple[int, ...]
) -> tuple[int, ...] | _Invalid:
    """Hidden units from `units` (one number or a comma list) and `layers` (how many, for one number)."""
    layers = default_layers
    if "layers" in values:
        parsed_layers = _parse_int("layers", values["layers"], minimum=1)
        if isinstance(parsed_layers, _Invalid):
            return parsed_layers
        layers = parsed_layers
    if "units" not in values:
        width = default_units[0] if default_units else 1
        return (width,) * layers
    parts = [part.strip() for part in values["units"].split(",") if part.strip()]
    parsed_parts = [_parse_int("units", part, minimum=1) for part in parts]
    errors = [part for part in parsed_parts if isinstance(part, _Invalid)]
    if errors or not parsed_parts:
        return _Invalid(
            f"Ignored units={values['units']!r} from the link: give whole numbers of at least 1, like 500 or 256,128."
        )
    if len(parsed_parts) == 1:
        return (parsed_parts[0],) * layers
    return tuple(parsed_parts)


def _parse_devices(raw: str, available: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    notices = []
    devices: list[str] = []
    for name in (part.strip().lower() for part in raw.split(",") if part.strip()):
        if not DEVICE_PATTERN.match(name):
            notices.append(
                f"Ignored the device {name!r} from the link: device names look like cpu:0, gpu:0 or gpu:all."
            )
        elif name not in available:
            notices.append(f"Ignored the device {name!r} from the link: this server has {', '.join(available)}.")
        elif name not in devices:
            devices.append(name)
    return tuple(devices), notices
