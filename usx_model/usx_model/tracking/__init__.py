"""Probe tracking: iiwa 14 forward kinematics, probe/image calibration, pose interpolation.

Everything here is in millimetres; 4x4 homogeneous transforms are named ``T_parent_child``.
"""
