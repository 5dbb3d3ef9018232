"""One pass of a planned robot sweep played in real time: which samples are due when.

ROS-free; the phantom node publishes what this says is due. Times are integer ns on the
caller's clock; a pass starts at ``t0`` and its samples are due at ``t0`` plus their plan
time. A frame is due once the joint sample at or after its stamp has gone out, so a
receiver always holds the two robot states around it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from usx_model.sim.robot_sweep import RobotSweep


class SweepPass:
    """Pass ``index`` of ``plan``: even passes play it forwards, odd ones backwards.

    Odd passes play the plan backwards, so the arm never jumps between passes.

    Attributes:
        q: (J, 7) joint angles in playing order, rad.
        frame_ns: (F,) frame times from the start of the pass, ns (increasing).
        order: (F,) plan frame index of each pass position (what frame ``i`` shows).
    """

    def __init__(self, plan: RobotSweep, index: int) -> None:
        forward = index % 2 == 0
        self._times = plan.joint_times_ns
        self.q = plan.joint_positions_rad if forward else plan.joint_positions_rad[::-1]
        self.frame_ns = (
            plan.frame_times_ns if forward else plan.duration_ns - plan.frame_times_ns[::-1]
        )
        order = np.arange(plan.n_frames)
        self.order = order if forward else order[::-1]
        self.t0 = 0
        self.next_joint = self.next_frame = 0

    def begin(self, t0_ns: int) -> None:
        """Start playing at ``t0_ns``: nothing sent yet."""
        self.t0, self.next_joint, self.next_frame = t0_ns, 0, 0

    def due_joints(self, now_ns: int) -> Iterator[tuple[int, np.ndarray]]:
        """(stamp ns, (7,) q) of each joint sample due by ``now_ns``, in order.

        A sample counts as sent when the caller comes back for the next one: breaking out
        of the loop leaves it due.
        """
        times = self._times
        while self.next_joint < len(times) and self.t0 + times[self.next_joint] <= now_ns:
            yield self.t0 + int(times[self.next_joint]), self.q[self.next_joint]
            self.next_joint += 1

    def due_frame(self) -> tuple[int, int] | None:
        """(pass position, stamp ns) of the next frame if its joint sample has gone out."""
        if self.next_frame >= len(self.frame_ns):
            return None
        t = int(self.frame_ns[self.next_frame])
        # a frame goes out once the joint sample at or after its stamp has gone out
        if int(np.searchsorted(self._times, t)) >= self.next_joint:
            return None
        return self.next_frame, self.t0 + t

    def frame_sent(self) -> None:
        self.next_frame += 1

    @property
    def finished(self) -> bool:
        """Every joint sample and every frame has gone out."""
        return self.next_joint == len(self._times) and self.next_frame == len(self.frame_ns)

    @property
    def last_q(self) -> np.ndarray:
        """(7,) where the arm stands at the end of the pass, rad."""
        return self.q[-1]
