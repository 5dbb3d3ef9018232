"""A live tracked sweep: frames placed by interpolated poses, compounded and segmented.

What the compounding node wraps. Frames and poses arrive in any interleaving, and the
pose stream may lag the images (it passes through forward kinematics in another node):
a frame is held until a pose stamped at or after it has arrived (up to ``max_pending``
frames, the oldest dropped first), then placed by interpolation between its bracketing
poses, so a live stream loses no frame to message ordering or transport lag. Each placed
frame is inserted into the volume and its bone surface (``segmentation.segment_bone``)
becomes 3D points in the base frame.

Before placement every frame passes the probe-contact test (``segmentation.contact``): a
frame that images mostly air is dropped (``no_contact``), never compounded nor segmented;
in a kept frame the uncoupled columns yield no bone points (counted in
``partial_contact``).
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from usx_model.base.points import ThinnedCloud
from usx_model.compounding.insert import CompoundingResult, insert_stride
from usx_model.compounding.sweep import SweepCompounder
from usx_model.compounding.volume import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    CompoundingMode,
    VolumeGrid,
)
from usx_model.segmentation.bone import BoneSegParams, segment_bone
from usx_model.segmentation.contact import ContactParams, probe_contact
from usx_model.tracking.calibration import ProbeCalibration
from usx_model.tracking.interpolation import PoseBuffer


@dataclass(frozen=True)
class FrameReport:
    """The fate of one frame: placed (with its bone point count) or dropped (reason)."""

    stamp_ns: int
    placed: bool
    bone_points: int = 0
    reason: str | None = None
    origin_mm: tuple[float, float, float] | None = None  # a placed frame's image origin, base


class BoneSweep:
    """Compounding + bone segmentation of one sweep.

    Args:
        grid: compounding grid in the base frame, mm.
        calibration: probe calibration; ``T_ee_probe`` is the identity when poses are
            already probe poses (as ``probe_tracker`` publishes them).
        image_shape: (rows, cols) every frame must have.
        seg_params: bone segmentation settings (pixel size must match the calibration).
        mode, mask, memory_budget_bytes: compounding settings (``Compounder``).
        pose_buffer: pose buffer (tolerance, temporal offset).
        max_pending: frames held while waiting for their bracketing pose.
        min_confidence: bone pixels below this confidence are not turned into points.
        contact: probe-contact test settings (depth spacing from the calibration when
            None); ``min_contact_fraction=0`` keeps every frame.
        pixel_stride: pixels inserted into the volume (``Compounder``); None: the largest
            stride the voxels allow (``insert_stride``). Segmentation uses every pixel.
        thin_voxel_mm: also keep the bone points thinned to this voxel as frames are
            placed (``base.points.ThinnedCloud``; 0 = not kept).
    """

    def __init__(
        self,
        grid: VolumeGrid,
        calibration: ProbeCalibration,
        image_shape: tuple[int, int],
        seg_params: BoneSegParams | None = None,
        mode: CompoundingMode = CompoundingMode.MEAN,
        mask: np.ndarray | None = None,
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
        pose_buffer: PoseBuffer | None = None,
        max_pending: int = 90,
        min_confidence: float = 0.0,
        contact: ContactParams | None = None,
        pixel_stride: int | None = None,
        thin_voxel_mm: float = 0.0,
    ) -> None:
        su, sv = calibration.image.spacing_mm
        self.contact = contact or ContactParams(depth_mm_per_px=sv)
        self.contact.validate()
        self.seg_params = seg_params or BoneSegParams(pixel_mm=(su, sv))
        self.seg_params.validate()
        self.image_shape = tuple(int(s) for s in image_shape)
        if pixel_stride is None:  # as sparse as the voxels allow (compounding.insert)
            pixel_stride = insert_stride((su, sv), min(grid.spacing_mm))
        self.sweep = SweepCompounder(
            grid,
            calibration,
            self.image_shape,
            mode,
            mask,
            memory_budget_bytes,
            pose_buffer,
            pixel_stride,
        )
        self.max_pending = int(max_pending)
        self.min_confidence = float(min_confidence)
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self._points: list[np.ndarray] = []
        self._point_stamps: list[np.ndarray] = []
        self._thinned = ThinnedCloud(thin_voxel_mm) if thin_voxel_mm > 0 else None
        self._beam_sum = np.zeros(3)
        self.frames_placed = 0
        self.dropped: Counter[str] = Counter()
        #: kept frames with uncoupled columns (their bone points there were discarded)
        self.partial_contact = 0
        self._placed_stamps = hashlib.sha256()
        self._received: list[int] = []

    def add_pose(self, stamp_ns: int, T_base_probe: np.ndarray) -> tuple[str | None, list]:
        """Buffer a pose; returns (rejection reason or None, reports of frames it released)."""
        reason = self.sweep.add_pose(stamp_ns, T_base_probe)
        return (None if reason is None else reason.value), self._release()

    def add_frame(self, stamp_ns: int, image: np.ndarray) -> list[FrameReport]:
        """Offer one frame; returns the reports of every frame settled by this call.

        Raises:
            ValueError: an image of another shape or dtype than the sweep's (the caller
                counts it; nothing is inserted).
        """
        image = np.asarray(image)
        if image.shape != self.image_shape or image.dtype != np.uint8:
            raise ValueError(
                f"expected a {self.image_shape} uint8 frame, got {image.shape} {image.dtype}"
            )
        self._pending.append((int(stamp_ns), image))
        self._received.append(int(stamp_ns))
        reports = self._release()
        while len(self._pending) > self.max_pending:
            stamp, _ = self._pending.popleft()
            self.dropped["pending_overflow"] += 1
            reports.append(FrameReport(stamp, False, reason="pending_overflow"))
        return reports

    @property
    def received_stamps_ns(self) -> np.ndarray:
        """(N,) int64 stamps of every frame this sweep took (placed, dropped or held)."""
        return np.array(self._received, dtype=np.int64)

    @property
    def pending(self) -> int:
        """Frames held for their poses."""
        return len(self._pending)

    def flush(self) -> list[FrameReport]:
        """Settle every held frame now (end of sweep): place it or drop it."""
        reports = []
        while self._pending:
            stamp, image = self._pending.popleft()
            reports.append(self._place(stamp, image))
        return reports

    def _bracketed(self, stamp_ns: int) -> bool:
        """Whether a pose at or after the frame's (offset) stamp has arrived."""
        poses = self.sweep.poses
        newest = poses.newest_stamp_ns
        return newest is not None and newest >= stamp_ns + poses.temporal_offset_ns

    def _release(self) -> list[FrameReport]:
        reports = []
        while self._pending and self._bracketed(self._pending[0][0]):
            stamp, image = self._pending.popleft()
            reports.append(self._place(stamp, image))
        return reports

    def _place(self, stamp_ns: int, image: np.ndarray) -> FrameReport:
        contact = probe_contact(image, self.contact)
        if not contact.ok:
            self.dropped["no_contact"] += 1
            return FrameReport(stamp_ns, False, reason="no_contact")
        outcome = self.sweep.add_frame(stamp_ns, image)
        if not outcome.inserted:
            reason = outcome.reason.value if outcome.reason is not None else "not_inserted"
            self.dropped[reason] += 1
            return FrameReport(stamp_ns, False, reason=reason)
        seg = segment_bone(image, self.seg_params)
        columns = None
        if not contact.columns[contact.sector].all():
            self.partial_contact += 1
            columns = contact.columns
        pts = seg.to_base(outcome.T_base_pixel, self.min_confidence, columns)
        if len(pts):
            self._points.append(pts)
            self._point_stamps.append(np.full(len(pts), stamp_ns, dtype=np.int64))
            if self._thinned is not None:
                self._thinned.add(pts)
        # image rows grow with depth: the pixel map's second column is the beam direction
        beam = outcome.T_base_pixel[:3, 1]
        self._beam_sum += beam / np.linalg.norm(beam)
        self.frames_placed += 1
        self._placed_stamps.update(np.int64(stamp_ns).tobytes())
        origin = tuple(float(v) for v in outcome.T_base_pixel[:3, 3])
        return FrameReport(stamp_ns, True, bone_points=len(pts), origin_mm=origin)

    @property
    def placed_digest(self) -> str:
        """sha256 (16 hex digits) of the placed frames' stamps, in placement order.

        Two runs that placed the same frames (a live sweep and its replay) agree on it,
        so a difference in their outputs is not explained by their inputs.
        """
        return self._placed_stamps.hexdigest()[:16]

    def points_since(self, chunk: int) -> tuple[np.ndarray, int]:
        """Bone points (K, 3) of the frames placed since ``chunk`` (a count this returned
        before; 0 = from the start) and the count to pass next time."""
        new = self._points[chunk:]
        return (np.concatenate(new) if new else np.zeros((0, 3))), len(self._points)

    def bone_points_mm(self) -> np.ndarray:
        """(N, 3) bone surface points of every placed frame, base frame, mm."""
        return np.concatenate(self._points) if self._points else np.zeros((0, 3))

    def thinned_bone_points_mm(self) -> np.ndarray:
        """(M, 3) ``thin_points(bone_points_mm(), thin_voxel_mm)``, kept as frames were placed.

        Raises:
            ValueError: the sweep was made without ``thin_voxel_mm``.
        """
        if self._thinned is None:
            raise ValueError("thinned_bone_points_mm: this sweep keeps no thinned points")
        return self._thinned.points()

    def bone_point_stamps_ns(self) -> np.ndarray:
        """(N,) int64 stamp of the frame of each point of ``bone_points_mm``."""
        return np.concatenate(self._point_stamps) if self._point_stamps else np.zeros(0, np.int64)

    def mean_beam_direction(self) -> np.ndarray | None:
        """(3,) unit mean beam direction of the placed frames, base frame (None: none)."""
        n = np.linalg.norm(self._beam_sum)
        return None if n == 0 else self._beam_sum / n

    def coverage_points_mm(self, stride_vox: int = 4) -> np.ndarray:
        """(M, 3) centres of covered voxels on a coarser lattice (every ``stride_vox``)."""
        cov = self.sweep.compounder.coverage[::stride_vox, ::stride_vox, ::stride_vox]
        idx = np.argwhere(cov > 0) * stride_vox
        return self.sweep.compounder.grid.index_to_world(idx)

    def result(self) -> CompoundingResult:
        return self.sweep.result()
