"""OpenIGTLink for 3D Slicer: message packing and a server for several clients."""
