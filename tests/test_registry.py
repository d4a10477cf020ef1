from __future__ import annotations

import pytest

from satdifuser.errors import ConfigError, UnknownNameError
from satdifuser.registry import Registry


def test_unknown_name_suggests_close_names() -> None:
    reg: Registry = Registry("fusion")
    reg.register("global_weighted")(lambda: 1)
    with pytest.raises(UnknownNameError, match="did you mean 'global_weighted'"):
        reg.get("global_weigted")


def test_duplicate_registration_raises() -> None:
    reg: Registry = Registry("head")
    reg.register("linear")(lambda: 1)
    with pytest.raises(ConfigError, match="registered twice"):
        reg.register("linear")(lambda: 2)
