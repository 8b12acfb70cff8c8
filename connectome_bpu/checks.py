"""The one place a report line's verdict comes from.

A :class:`Check` stores the boolean that a test computed; the renderer turns it into ``PASS``/``FAIL``.
Report writers therefore cannot print a PASS without having evaluated something that can be false
(docs/departures.md#computed-checks).
Informational lines (counts, notes) are plain :class:`Note` bullets and never carry a verdict.

A check may carry a short stable ``key`` (``"data.pools_order"``): it is never rendered, so the report
text does not depend on it, but it lets tests name the check they expect to fail and prove that every
check of a report has been seen failing (tests/test_validation_reports.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union


@dataclass(frozen=True)
class Check:
    passed: bool
    text: str
    key: str = ""

    def __post_init__(self) -> None:
        # numpy.bool_ and friends are accepted but stored as a real bool so reports are uniform.
        object.__setattr__(self, "passed", bool(self.passed))

    def render(self) -> str:
        return f"- {'PASS' if self.passed else 'FAIL'}: {self.text}"


@dataclass(frozen=True)
class Note:
    text: str
    label: str = ""

    def render(self) -> str:
        return f"- {self.label}: {self.text}" if self.label else f"- {self.text}"


Line = Union[Check, Note]


def check(condition: object, text: str, key: str = "") -> Check:
    return Check(bool(condition), text, key)


def render_report(title: str, lines: Iterable[Line], preamble: str = "") -> str:
    """``# Title``, an optional paragraph, then one bullet per line (the original benchmark's layout)."""
    body = [f"# {title}", ""]
    if preamble:
        body += [preamble, ""]
    body += [line.render() for line in lines]
    return "\n".join(body) + "\n"


def all_passed(lines: Iterable[Line]) -> bool:
    return all(line.passed for line in lines if isinstance(line, Check))
