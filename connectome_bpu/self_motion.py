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


def integrate(controls: np.ndarray, displacement: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heading and position (each (count, T) float32) from θ_0 = 0 at the origin, heading updated before the move.

    The recursion runs over time, vectorised over sequences, with the original's float64 operations in
    the original's order, so every element is bit-identical to its per-sequence scalar loop.
    ``displacement`` = (dx, dy), each (count, T), is added to the position after each step's move: the
    landmark task's passive jumps, which never change the heading.
    """
    count, T, _ = controls.shape
    speed = np.ascontiguousarray(controls[:, :, 0].T, dtype=np.float64)
    turn_rate = np.ascontiguousarray(controls[:, :, 1].T, dtype=np.float64)
    jump_x, jump_y = (None, None) if displacement is None else (np.asarray(d, np.float64).T for d in displacement)
    theta_t = np.empty((T, count), dtype=np.float32)
    x_t = np.empty((T, count), dtype=np.float32)
    y_t = np.empty((T, count), dtype=np.float32)
    theta = np.zeros(count)
    x = np.zeros(count)
    y = np.zeros(count)
    for t in range(T):
        theta = wrap_angle(theta + turn_rate[t])
        x = x + speed[t] * np.cos(theta)
        y = y + speed[t] * np.sin(theta)
        if jump_x is not None:
            x = x + jump_x[t]
            y = y + jump_y[t]
        theta_t[t], x_t[t], y_t[t] = theta, x, y
    return (np.ascontiguousarray(theta_t.T), np.ascontiguousarray(x_t.T), np.ascontiguousarray(y_t.T))
