"""Freehand-style 3D compounding of tracked 2D ultrasound frames (PLUS-like, nearest neighbour).

Volumes live in the robot base frame (``lbr_link_0``), axis-aligned, millimetres.
"""
