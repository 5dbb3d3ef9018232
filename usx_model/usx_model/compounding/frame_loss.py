"""How many of a sweep's frames were lost: dropped, rejected, or never arrived.

A sweep that lost many frames can still hold enough bone points to complete every level,
and the completion then looks sound while it rests on a fraction of the anatomy the
robot swept. The count here lets the completion refuse to call such levels ``ok``.

Frames that never arrived (transport loss, a stalled driver) leave no trace but gaps in
the stamps of those that did: with the stream's period taken as the median interval
between received stamps, a gap of ``k`` periods hides ``k - 1`` frames. Frames that
arrived but were refused at the input (a bad stamp, an invalid image) are counted by the
caller. Frames the probe-contact test dropped (the probe was lifted) are not lost: the
robot saw air there, and they are reported apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameLoss:
    """A sweep's frame accounting.

    Attributes:
        expected: frames the sweep should have delivered (the larger of the frames that
            arrived and the count the stamps' gaps imply).
        placed: frames placed in the volume.
        no_contact: frames dropped because the probe imaged air.
        lost: every other expected frame (dropped for another reason, rejected at the
            input, or missing from the stream).
    """

    expected: int
    placed: int
    no_contact: int
    lost: int

    @property
    def fraction(self) -> float:
        """``lost / expected`` (0 for a sweep that expected no frame)."""
        return self.lost / self.expected if self.expected else 0.0

    def as_dict(self) -> dict:
        return {
            "frames_expected": self.expected,
            "frames_placed": self.placed,
            "frames_no_contact": self.no_contact,
            "frames_lost": self.lost,
            "lost_fraction": round(self.fraction, 4),
        }


def implied_frames(stamps_ns: np.ndarray) -> int:
    """Frames a stream delivered or should have, from its received stamps (ns).

    The period is the median interval between consecutive distinct stamps; each interval
    counts ``max(1, round(interval / period))`` frames. Fewer than three stamps imply just
    themselves (no period to judge gaps by).
    """
    s = np.unique(np.asarray(stamps_ns, dtype=np.int64))
    if len(s) < 3:
        return len(s)
    dt = np.diff(s).astype(np.float64)
    period = float(np.median(dt))
    return 1 + int(np.maximum(1, np.rint(dt / period)).sum())


def count_frame_loss(
    received_stamps_ns: np.ndarray, placed: int, no_contact: int, rejected: int
) -> FrameLoss:
    """The :class:`FrameLoss` of one sweep.

    Args:
        received_stamps_ns: (N,) stamps of the frames the sweep took (placed or dropped).
        placed: frames placed.
        no_contact: frames dropped by the probe-contact test.
        rejected: frames refused before the sweep took them (bad stamp, invalid image).

    Raises:
        ValueError: counts that do not add up (negative, or more placed than received).
    """
    received = len(np.asarray(received_stamps_ns))
    if min(placed, no_contact, rejected) < 0 or placed + no_contact > received:
        raise ValueError(
            f"expected 0 <= placed + no_contact <= received and rejected >= 0, got placed "
            f"{placed}, no_contact {no_contact}, received {received}, rejected {rejected}"
        )
    expected = max(received + rejected, implied_frames(received_stamps_ns))
    return FrameLoss(expected, placed, no_contact, expected - placed - no_contact)
