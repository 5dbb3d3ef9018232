"""Frame accounting of ``usx bench multihost``: what crossed the link, what an outage cost.

Pure functions over the monitor's events (``tools.multihost_monitor``) and the times the
bench took the link down and up, all on one ``time.monotonic()`` clock. Definitions:

- ``outage_s``: from the moment both veth ends were down to the moment both were up
  again (the commands' own time excluded).
- ``recovered_s``: from the link's return (both ends up) to the arrival, on the
  workstation side, of the first B-mode frame received after it; None if none came.
- ``frames_sent``: frames the phantom published in its pass (its ``/phantom/status``).
- ``frames_received``: distinct frames (by header stamp) the workstation-side monitor
  received.
- ``frames_lost``: ``frames_sent - frames_received``: frames of the sweep that never
  reached the workstation side, whatever the cause.
- ``frames_lost_in_outage``: the part of ``frames_lost`` in gaps of the received stamps
  that span the outage (the gap's frames counted at the median frame period);
  ``frames_lost_elsewhere`` the rest (UDP overruns, a late monitor).
- ``frames_received_while_down``: frames that arrived while the link was down, later than
  ``in_flight_s`` after it went down (frames already in the receiving process may still be
  delivered). Must be 0: a frame then would have bypassed the link (shared memory).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Frames already received by the workstation's process when the link went down may
#: reach the monitor's callback up to this much later on a loaded machine, s.
IN_FLIGHT_S = 0.5


@dataclass(frozen=True)
class Outage:
    """When the link was down, on ``time.monotonic()`` (s)."""

    down_t: float
    up_t: float

    @property
    def duration_s(self) -> float:
        return self.up_t - self.down_t


def frame_accounting(
    arrival_t: np.ndarray,
    stamp_ns: np.ndarray,
    frames_sent: int | None,
    outage: Outage | None,
    in_flight_s: float = IN_FLIGHT_S,
) -> dict:
    """Frames received, lost and recovered across an outage of the link.

    Args:
        arrival_t: (N,) receive times of the frames on the workstation side,
            ``time.monotonic()`` seconds, in arrival order.
        stamp_ns: (N,) the frames' header stamps, ns (duplicates counted once).
        frames_sent: frames the phantom published (None: unknown, so no loss figures).
        outage: when the link was down; None when it never went down.
        in_flight_s: see ``frames_received_while_down`` in the module docstring.

    Returns:
        ``frames_received``, ``frames_lost``, ``frames_lost_in_outage``,
        ``frames_lost_elsewhere``, ``frames_received_while_down``, ``recovered_s``,
        ``frame_period_s`` (median stamp step). Loss figures are None without
        ``frames_sent``, outage figures None without ``outage``.

    Raises:
        ValueError: arrays of different lengths or not 1-D.
    """
    arrival_t = np.asarray(arrival_t, dtype=np.float64)
    stamp_ns = np.asarray(stamp_ns, dtype=np.int64)
    if arrival_t.ndim != 1 or arrival_t.shape != stamp_ns.shape:
        raise ValueError(
            f"expected arrival_t and stamp_ns of one shape (N,), got {arrival_t.shape} "
            f"and {stamp_ns.shape}"
        )
    stamps, first = np.unique(stamp_ns, return_index=True)  # sorted by stamp
    arrivals = arrival_t[first]
    received = int(stamps.size)
    steps = np.diff(stamps) * 1e-9
    period = float(np.median(steps)) if steps.size else None
    out: dict = {
        "frames_received": received,
        "frames_lost": None if frames_sent is None else int(frames_sent) - received,
        "frame_period_s": period,
        "frames_lost_in_outage": None,
        "frames_lost_elsewhere": None,
        "frames_received_while_down": None,
        "recovered_s": None,
    }
    if outage is None:
        return out
    late = arrival_t[arrival_t > outage.up_t]
    out["recovered_s"] = float(late.min() - outage.up_t) if late.size else None
    down = (arrival_t > outage.down_t + in_flight_s) & (arrival_t < outage.up_t)
    out["frames_received_while_down"] = int(down.sum())
    if period is None or period <= 0:
        return out
    missing = np.maximum(np.rint(steps / period).astype(np.int64) - 1, 0)
    # a gap spans the outage when its frames on either side arrived before and after it
    spans = (arrivals[:-1] <= outage.up_t) & (arrivals[1:] >= outage.down_t)
    in_outage = int(missing[spans].sum())
    out["frames_lost_in_outage"] = in_outage
    if out["frames_lost"] is not None:
        out["frames_lost_elsewhere"] = out["frames_lost"] - in_outage
    return out
