"""docs/parameters.md is generated from the nodes' schemas and must be current."""

from __future__ import annotations

import pytest

from usx_ros.tools.param_docs import DOCS, REGENERATE, render

pytestmark = pytest.mark.ros


def test_parameters_md_is_current():
    current = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else ""
    assert current == render(), f"{DOCS} is stale: regenerate it with `{REGENERATE}`"
