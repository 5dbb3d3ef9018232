"""The usx ROS 2 nodes; each module defines a Node class and ``main()`` for ``ros2 run``."""
