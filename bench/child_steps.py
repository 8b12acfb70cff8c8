"""Run one benchmark step in a child process and report its result with that child's peak memory.

Each step gets its own interpreter so the peak RSS (``os.wait4`` on exactly that child) is the step's
own, not the high-water mark of everything the parent did before. A step prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def add_child_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden ``--step``/``--folder`` options through which a script re-runs itself as a child."""
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)


def parse_or_run_child(parser: argparse.ArgumentParser, run_step) -> argparse.Namespace | None:
    """Parse the command line; when invoked as a child, run the step, print its JSON line, return None."""
    add_child_arguments(parser)
    args = parser.parse_args()
    if args.step:
        print(run_step(args.step, Path(args.folder)))
        return None
    return args


def comma_choices(parser: argparse.ArgumentParser, text: str, allowed, what: str) -> list[str]:
    """Split a comma-separated option and reject anything not in ``allowed`` with a usage error."""
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        parser.error(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def in_subprocess(script: str, step: str, folder: Path, env: dict | None = None) -> tuple[dict, float]:
    """(the step's JSON result, peak RSS of its process in MiB)."""
    child = subprocess.Popen([sys.executable, script, "--step", step, "--folder", str(folder)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"step {step} on {folder.name} failed with exit code {code}")
    return json.loads(output.strip().splitlines()[-1]), usage.ru_maxrss / 1024.0   # Linux: KiB
