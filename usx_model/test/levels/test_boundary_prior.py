"""Boundary prior: the fitted table's cells, the rule and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.levels.boundary_prior import (
    DEPTH_BIN_MM,
    DEPTH_MIN_MM,
    OFFSET_TABLE_MM,
    RULE_SHIFT_MM,
    SIDE_BIN_MM,
    TABLE_SHAPE,
    arch_boundary_mm,
    fit_boundary_offsets,
    table_offset_mm,
)


def test_fit_recovers_cell_thresholds():
    """Two cells with known separating heights (+6 and -4 mm); every other cell is empty
    and takes the rule's value at its centre."""
    rng = np.random.default_rng(0)
    side = np.concatenate([np.full(600, 1.0), np.full(600, 40.0)])
    depth = np.concatenate([np.full(600, 42.0), np.full(600, 42.0)])
    height = rng.uniform(-20, 20, 1200)
    cut = np.where(side < 10, 6.0, -4.0)
    table = fit_boundary_offsets(side, depth, height, height > cut, min_count=100)
    assert table.shape == TABLE_SHAPE
    a0, a1, b = 0, int(40.0 // SIDE_BIN_MM), int((42.0 - DEPTH_MIN_MM) // DEPTH_BIN_MM)
    # any threshold between the nearest samples either side is optimal: within 0.5 mm
    assert table[a0, b] == pytest.approx(6.0, abs=0.5)
    assert table[a1, b] == pytest.approx(-4.0, abs=0.5)
    centre_side, centre_depth = (3 + 0.5) * SIDE_BIN_MM, DEPTH_MIN_MM + (12 + 0.5) * DEPTH_BIN_MM
    expected = arch_boundary_mm(np.array([centre_side]), np.array([centre_depth]), RULE_SHIFT_MM)[0]
    assert table[3, 12] == pytest.approx(expected)
    # lookups hit the right cells; far values clip into the border cells
    np.testing.assert_allclose(
        table_offset_mm(np.array([1.0, 40.0]), np.array([42.0, 42.0]), table),
        [table[a0, b], table[a1, b]],
    )
    assert table_offset_mm(np.array([500.0]), np.array([-99.0]), table)[0] == table[-1, 0]


def test_shipped_table_bends_like_the_anatomy():
    """Medial and deep: caudal (< 0); lateral and deep: cranial (> 0); bodies: ~0."""
    assert OFFSET_TABLE_MM.shape == TABLE_SHAPE
    assert table_offset_mm(np.array([2.0]), np.array([55.0]))[0] < -3.0
    assert table_offset_mm(np.array([35.0]), np.array([32.0]))[0] > 3.0
    assert abs(table_offset_mm(np.array([5.0]), np.array([-8.0]))[0]) <= 2.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: table_offset_mm(np.zeros(2), np.zeros(2), np.zeros((3, 3))), "shape"),
        (
            lambda: fit_boundary_offsets(np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(3)),
            "one length",
        ),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
