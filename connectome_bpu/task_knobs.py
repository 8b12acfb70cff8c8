"""What the task families' spec classes share when they read their knobs from ``config["task"]``.

Each family (``associative``, ``optic_flow``) keeps its knobs in its own section of the task config and
refuses what it does not know, because a misspelt knob would otherwise silently run the default task.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import BPUInputError


def is_integer(value: Any) -> bool:
    """An integer that is not a bool (YAML ``true`` must not pass as 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def section_knobs(task_cfg: Mapping[str, Any], section: str, knobs: Sequence[str]) -> dict[str, Any]:
    """The knobs of ``task.<section>`` (an absent or null section: none, so every default applies).

    Raises BPUInputError naming ``task.<section>`` when it is not a mapping or has a key outside ``knobs``.
    """
    values = task_cfg.get(section)
    if values is None:
        return {}
    key = f"task.{section}"
    if not isinstance(values, Mapping):
        raise BPUInputError(f"{key} is {values!r}; expected a mapping of {', '.join(knobs)}")
    unknown = sorted(str(name) for name in values if name not in knobs)
    if unknown:
        raise BPUInputError(f"{key} has unknown key(s) {', '.join(unknown)}; expected only {', '.join(knobs)}")
    return dict(values)
