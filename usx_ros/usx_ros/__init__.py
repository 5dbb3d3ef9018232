"""usx_ros: thin rclpy nodes around usx_model, message conversions and bag tools.

Nodes declare parameters, convert messages with ``usx_ros.conversions`` and call the
core; they do no geometry of their own.
"""

__version__ = "0.1.0"
