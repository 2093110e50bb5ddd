"""SIMULATOR: stand-in for ``acestep.training_v2`` (only ``preprocess`` exists here)."""
