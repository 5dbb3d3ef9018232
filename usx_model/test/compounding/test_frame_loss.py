"""Frame-loss accounting against hand-counted streams."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.compounding.frame_loss import FrameLoss, count_frame_loss, implied_frames

P = 16_666_667  # 60 Hz, ns


def _stream(n: int, missing: tuple[int, ...] = ()) -> np.ndarray:
    return np.array([k * P for k in range(n) if k not in missing], dtype=np.int64)


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (_stream(0), 0),
        (_stream(2), 2),
        (_stream(100), 100),
        (_stream(100, missing=(10, 11, 12, 50)), 100),
        (_stream(100, missing=tuple(range(20, 60))), 100),
        # stamp jitter of a fifth of a period does not invent frames
        (_stream(100) + np.random.default_rng(0).integers(-P // 5, P // 5, 100), 100),
    ],
)
def test_implied_frames_counts_the_gaps(stamps, expected: int) -> None:
    assert implied_frames(stamps) == expected


def test_implied_frames_matches_a_naive_count() -> None:
    rng = np.random.default_rng(4)
    keep = rng.random(500) > 0.2
    stamps = _stream(500)[keep]
    naive = round(int(stamps[-1] - stamps[0]) / P) + 1
    assert implied_frames(stamps) == naive


def test_loss_adds_dropped_rejected_and_missing() -> None:
    stamps = _stream(100, missing=tuple(range(40, 50)))  # 90 received, 10 never arrived
    loss = count_frame_loss(stamps, placed=80, no_contact=5, rejected=0)
    assert loss == FrameLoss(expected=100, placed=80, no_contact=5, lost=15)
    assert loss.fraction == pytest.approx(0.15)


def test_a_rejected_frame_is_not_counted_twice() -> None:
    # frame 30 arrived with an invalid image: a gap in the stamps and one rejection
    loss = count_frame_loss(_stream(100, missing=(30,)), placed=99, no_contact=0, rejected=1)
    assert (loss.expected, loss.lost) == (100, 1)
    # a future-stamped extra message: no gap, but one more expected (and lost) message
    loss = count_frame_loss(_stream(100), placed=100, no_contact=0, rejected=1)
    assert (loss.expected, loss.lost) == (101, 1)


def test_empty_sweep_has_no_loss() -> None:
    assert count_frame_loss(_stream(0), 0, 0, 0).fraction == 0.0


@pytest.mark.parametrize(("placed", "no_contact", "rejected"), [(-1, 0, 0), (0, 0, -1), (8, 3, 0)])
def test_inconsistent_counts_are_refused(placed: int, no_contact: int, rejected: int) -> None:
    with pytest.raises(ValueError, match="expected 0 <= placed \\+ no_contact <= received"):
        count_frame_loss(_stream(10), placed, no_contact, rejected)
