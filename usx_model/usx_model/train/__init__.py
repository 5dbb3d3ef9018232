"""Training of the completion network (``usx train``)."""
