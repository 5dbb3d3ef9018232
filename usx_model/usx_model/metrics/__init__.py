"""Per-vertebra completion metrics (whole, arch and body) in millimetres and paper units."""

from usx_model.metrics.vertebra import (
    DEFAULT_F1_THRESHOLD_MM,
    anatomical_split,
    halfspace_split,
    vertebra_metrics,
)

__all__ = ["DEFAULT_F1_THRESHOLD_MM", "anatomical_split", "halfspace_split", "vertebra_metrics"]
