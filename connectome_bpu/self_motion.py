"""Conventions every path-integration task shares: the self-motion channels, angle wrapping, heading bins.

They live apart from the task generators so that each generator (``tasks.py`` for the plain tasks,
``landmark.py`` for the cue-and-jump task) and the metrics can use them without importing each other.
"""

from __future__ import annotations

import numpy as np

CONTROL_DIM = 2  # [v_t, ω_t]: speed and turn rate, the first input channels of every path task


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    """Map angles to [-π, π) with the original's formula; its exact rounding is part of the data."""
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def heading_bin_angles(bins: int) -> np.ndarray:
    """Preferred headings φ_i = -π + 2πi/B as float32: the bump targets and the metric decoder share them."""
    return np.linspace(-np.pi, np.pi, bins, endpoint=False, dtype=np.float32)
