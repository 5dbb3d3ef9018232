"""One module per ``usx`` subcommand; each defines ``register(subparsers)``.

Modules here are discovered automatically, so adding a subcommand never touches
another command's file. Packages that depend on ROS (``usx_ros``) contribute
subcommands through the ``usx.commands`` entry-point group instead, which keeps
this package free of rclpy.
"""
