"""usx_model: the ROS-free core of usx (phantom, simulators, completion network, metrics).

Units are millimetres and the anatomical frame is LPS (x patient left, y posterior,
z superior) unless a name says otherwise. Nothing in this package imports rclpy.
"""

__version__ = "0.1.0"
