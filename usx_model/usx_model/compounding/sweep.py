"""A tracked sweep: pose buffer + probe calibration + compounder, as one object.

This is what a compounding node wraps: feed it flange poses and stamped images in
arrival order; each image is placed by the interpolated pose and inserted, or dropped
and counted. Stamps are integer nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usx_model.compounding.insert import Compounder, CompoundingResult
from usx_model.compounding.volume import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    CompoundingMode,
    VolumeGrid,
)
from usx_model.tracking.calibration import ProbeCalibration, base_pixel_transform
from usx_model.tracking.interpolation import DropReason, PoseBuffer


@dataclass(frozen=True)
class FrameOutcome:
    """What happened to one image.

    Attributes:
        inserted: True when the frame was placed and inserted.
        T_base_pixel: (4, 4) pixel -> base affine (mm) when placed, else None; reuse it to
            turn the frame's bone pixels into points (``compounding.points``).
        pixels_inserted: pixels that landed in the grid.
        reason: why the frame was dropped, else None.
    """

    inserted: bool
    T_base_pixel: np.ndarray | None
    pixels_inserted: int = 0
    reason: DropReason | None = None


class SweepCompounder:
    """Compound one sweep of tracked frames.

    Args:
        grid: output grid in the base frame, mm.
        calibration: probe calibration (hand-eye, image spacing and origin).
        image_shape: (rows, columns) of every frame.
        mode, mask, memory_budget_bytes, pixel_stride: passed to ``Compounder``.
        pose_buffer: the pose buffer (its tolerance and temporal offset apply); a default
            ``PoseBuffer()`` when None.
    """

    def __init__(
        self,
        grid: VolumeGrid,
        calibration: ProbeCalibration,
        image_shape: tuple[int, int],
        mode: CompoundingMode = CompoundingMode.MEAN,
        mask: np.ndarray | None = None,
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
        pose_buffer: PoseBuffer | None = None,
        pixel_stride: int = 1,
    ) -> None:
        self.calibration = calibration
        self.poses = pose_buffer if pose_buffer is not None else PoseBuffer()
        self.compounder = Compounder(
            grid, image_shape, mode, mask, memory_budget_bytes, pixel_stride
        )

    def add_pose(self, stamp_ns: int, T_base_ee: np.ndarray) -> DropReason | None:
        """Buffer one flange pose (4, 4, mm); returns the rejection reason if rejected."""
        return self.poses.add_transform(stamp_ns, T_base_ee)

    def add_frame(self, stamp_ns: int, image: np.ndarray) -> FrameOutcome:
        """Place and insert one image, or drop it (counted in ``self.poses.counts``)."""
        hit = self.poses.lookup(stamp_ns)
        if not hit.valid:
            return FrameOutcome(False, None, 0, hit.reason)
        T_base_pixel = base_pixel_transform(hit.T_base_ee, self.calibration)
        n = self.compounder.insert(image, T_base_pixel)
        return FrameOutcome(True, T_base_pixel, n)

    @property
    def drop_counts(self) -> dict[str, int]:
        """Rejected poses and dropped frames by reason code (``no_pose`` = dropped frames)."""
        return {reason.value: n for reason, n in self.poses.counts.items()}

    def result(self, empty_value: float = 0.0) -> CompoundingResult:
        return self.compounder.result(empty_value)
