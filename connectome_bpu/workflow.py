"""Glue between Snakemake's ``script:`` directive and the package.

Workflow scripts stay three lines long: they hand the ``snakemake`` object and one package function
to :func:`run_step`, which routes Python logging and warnings into the rule's ``log:`` file, records
how long the step took, and lets exceptions propagate (Snakemake then marks the job failed and
removes its declared outputs; our writers are atomic, so nothing half-written survives either).
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

LOG = logging.getLogger("connectome_bpu")


@contextmanager
def rule_logging(log_path: str | None) -> Iterator[logging.Logger]:
    """Send package logging (INFO and up) to ``log_path`` (or stderr when a rule has no log)."""
    handler: logging.Handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield LOG
    finally:
        root.removeHandler(handler)
        handler.close()


def run_step(smk: Any, step: Callable[[Any], Any]) -> Any:
    """Run ``step(smk)`` with logging routed to ``smk.log[0]``; log and re-raise failures."""
    log_path = smk.log[0] if len(smk.log) else None
    with rule_logging(log_path) as log:
        started = time.perf_counter()
        log.info("rule %s started (wildcards: %s)", smk.rule, dict(smk.wildcards.items()))
        try:
            result = step(smk)
        except Exception:
            log.exception("rule %s failed", smk.rule)
            raise
        log.info("rule %s finished in %.2f s", smk.rule, time.perf_counter() - started)
        return result
