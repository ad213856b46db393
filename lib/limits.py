"""Server-side limits for a shared Streamlit server, read from environment variables.

The UI shows these next to its sliders, but they are enforced here, on the server side,
so a crafted request (a query parameter, a direct call) cannot bypass them.

Each limit has an environment variable and a documented default; see `LIMIT_ENV_VARS`. Every limit is a
positive integer, except those in `OFF_WHEN_ZERO`, where 0 (their default) turns the limit off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, fields

ENV_PREFIX = "GPUX_MAX_"


class LimitConfigError(ValueError):
    """An environment variable for a limit holds something that is not an allowed integer."""


@dataclass(frozen=True)
class ServerLimits:
    """Upper bounds that every request is checked against before work starts."""

    params: int = 20_000_000  # trainable parameters of one model
    hidden_layers: int = 8  # hidden Dense layers
    units: int = 4096  # units in one hidden layer
    epochs: int = 50  # epochs of one training job
    samples: int = 60_000  # training samples of one job
    batch_size: int = 8192  # samples per training step
    matmul_n: int = 4096  # largest N of the N x N matrix-product demo
    queue: int = 30  # jobs waiting or running at once on this server
    job_seconds: int = 1800  # wall-clock limit of one job, seconds
    jobs_per_client: int = 0  # jobs one client (browser address) may have queued or running; 0: no limit
    repeats: int = 5  # runs per device of one job (its median and spread are reported)


LIMIT_ENV_VARS: dict[str, str] = {f.name: ENV_PREFIX + f.name.upper() for f in fields(ServerLimits)}
# Limits where 0 means "no limit" (off by default: a class behind one NAT shares one address).
MIN_SWEEP_POINTS = 2  # batch sizes per sweep ("Where does the GPU win?"): fewer draw no curve
MAX_SWEEP_POINTS = 6  # each is one short run per device
OFF_WHEN_ZERO = frozenset({"jobs_per_client"})
SPEC_LIMITS = ("hidden_layers", "units", "params", "epochs", "batch_size")  # the limits a model spec meets
# Pages name limits by their values; the variables that set them are for the server's owner, folded away.
OWNER_SETTINGS_TITLE = "For the server's owner: where these limits are set"


def owner_settings(limits: ServerLimits, names: Iterable[str]) -> str:
    """The environment variables that set some limits, with the values in force, as a markdown list.

    Args:
        limits: The limits in force.
        names: `ServerLimits` fields, e.g. `SPEC_LIMITS`.

    Returns:
        One line per limit, e.g. "- `GPUX_MAX_EPOCHS=50`"; a limit that 0 turns off says so.
    """
    lines = []
    for name in names:
        value = getattr(limits, name)
        off = " (0: no limit)" if name in OFF_WHEN_ZERO and value == 0 else ""
        lines.append(f"- `{LIMIT_ENV_VARS[name]}={value}`{off}")
    return "\n".join(lines)


def load_limits(environ: dict[str, str] | None = None) -> ServerLimits:
    """Reads the server limits from the environment, falling back to the defaults.

    Args:
        environ: The environment to read; `os.environ` when None.

    Returns:
        The limits in force.

    Raises:
        LimitConfigError: A variable is set but is not a positive integer (or, for `OFF_WHEN_ZERO`, 0 or more).
    """
    env = os.environ if environ is None else environ
    values = {}
    for name, var in LIMIT_ENV_VARS.items():
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        values[name] = _limit_value(var, raw, minimum=0 if name in OFF_WHEN_ZERO else 1)
    return ServerLimits(**values)


def _limit_value(var: str, raw: str, *, minimum: int) -> int:
    allowed = "a positive integer" if minimum > 0 else "0 (no limit) or a positive integer"
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError as error:
        raise LimitConfigError(f"{var}={raw!r} is not an integer; unset it or give {allowed}.") from error
    if value < minimum:
        raise LimitConfigError(f"{var}={raw!r} must be {allowed}.")
    return value
