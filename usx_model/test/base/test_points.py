"""Shared point-cloud validation: accepted inputs and the pinned messages for bad ones."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.base.points import check_points


@pytest.mark.parametrize(
    ("points", "min_count"),
    [
        (np.zeros((0, 3), dtype=np.float32), 0),
        ([[1, 2, 3]], 1),
        (np.arange(12.0).reshape(4, 3), 4),
    ],
    ids=["empty_allowed", "int_list", "exactly_min"],
)
def test_good_input_becomes_float64(points, min_count) -> None:
    got = check_points(points, "cloud", min_count)
    assert got.dtype == np.float64 and got.shape == (len(points), 3)
    np.testing.assert_array_equal(got, np.asarray(points, dtype=np.float64))


def test_result_is_a_copy() -> None:
    src = np.ones((2, 3))
    check_points(src, "cloud")[0, 0] = 5.0
    assert src[0, 0] == 1.0


@pytest.mark.parametrize(
    ("points", "min_count", "match"),
    [
        (np.zeros((4, 2)), 0, r"expected cloud as \(N, 3\) float points, got \(4, 2\)"),
        (np.zeros(3), 0, r"expected cloud as \(N, 3\) float points, got \(3,\)"),
        (np.zeros((2, 3)), 3, "cloud needs at least 3 points, got 2"),
        (np.array([[0.0, np.nan, 0.0]]), 0, "cloud contains non-finite values"),
        (np.array([[0.0, 0.0, np.inf]]), 0, "cloud contains non-finite values"),
    ],
    ids=["columns", "flat", "too_few", "nan", "inf"],
)
def test_bad_input(points, min_count, match) -> None:
    with pytest.raises(ValueError, match=match):
        check_points(points, "cloud", min_count)
