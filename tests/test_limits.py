import dataclasses

import pytest

from lib.limits import LIMIT_ENV_VARS, LimitConfigError, ServerLimits, load_limits
from tests.conftest import REPO_ROOT


def test_defaults_when_nothing_is_set():
    assert load_limits({}) == ServerLimits()


def test_each_variable_overrides_its_limit():
    env = {var: str(1000 + i) for i, var in enumerate(LIMIT_ENV_VARS.values())}
    limits = load_limits(env)
    for i, name in enumerate(LIMIT_ENV_VARS):
        assert getattr(limits, name) == 1000 + i


def test_underscores_and_blank_values():
    limits = load_limits({"GPUX_MAX_PARAMS": "1_000_000", "GPUX_MAX_EPOCHS": "  "})
    assert limits.params == 1_000_000
    assert limits.epochs == ServerLimits().epochs


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "1.5"])
def test_bad_values_name_the_variable(raw):
    with pytest.raises(LimitConfigError, match="GPUX_MAX_QUEUE"):
        load_limits({"GPUX_MAX_QUEUE": raw})


def test_readme_documents_every_limit_with_its_default():
    readme = (REPO_ROOT / "README.md").read_text()
    defaults = ServerLimits()
    for field in dataclasses.fields(ServerLimits):
        var = LIMIT_ENV_VARS[field.name]
        assert f"| `{var}` |" in readme
        assert f"| {getattr(defaults, field.name)} |" in readme
