"""The work of each Snakemake rule: ``rules/<file>.smk :: rule <name>`` runs
``connectome_bpu.rules.<file>.<name>(smk)`` through ``workflow_scripts/<name>.py``.

Rule functions take Snakemake's ``snakemake`` object (or anything with the same ``input``, ``output``,
``params``, ``wildcards``, ``threads`` and ``log`` attributes), unpack it, and call the package. This
module runs them: package logging and warnings go to the rule's ``log:`` file, and a problem the
package diagnosed (:class:`BPUInputError`, :class:`GraphError`) reaches the user as one plain block
naming the rule and the log instead of a traceback. Any other exception is a bug and keeps its
traceback. Outputs are written atomically, so a failed job leaves nothing half-written.

Each job is a fresh Python process that imports torch, pandas or scipy and exits minutes (or seconds) later.
Its scripts pause garbage collection while those imports run (``workflow_scripts/_package.py``);
:func:`run_rule` then freezes everything imported out of later collections and collects the rule's own
garbage as usual, and freezes again before exit, when the interpreter would otherwise walk every object once
more. A tiny training job (the test suite's config) costs 2.8 s of CPU instead of 3.9 s this way; at real
sizes the same second is saved, small beside the training itself.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from ..errors import BPUInputError, GraphError

LOG = logging.getLogger("connectome_bpu")
EXIT_DIAGNOSED = 2   # exit status of a job stopped by a diagnosed input or graph problem


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


def error_block(rule: str, error: Exception, log_path: str | None) -> str:
    """The text a user sees when a rule stops on a diagnosed problem."""
    lines = [f"connectome-bpu: rule '{rule}' stopped", *("  " + line for line in str(error).splitlines())]
    if log_path:
        lines.append(f"  (log: {log_path})")
    return "\n".join(lines)


def run_rule(smk: Any, function: Callable[[Any], Any]) -> Any:
    """Run ``function(smk)`` with logging routed to ``smk.log[0]``; diagnosed errors exit cleanly."""
    log_path = smk.log[0] if len(smk.log) else None
    gc.freeze()   # the imports' objects live until exit: keep them out of every collection from here on
    gc.enable()
    with rule_logging(log_path) as log:
        started = time.perf_counter()
        log.info("rule %s started (wildcards: %s)", smk.rule, dict(smk.wildcards.items()))
        try:
            result = function(smk)
        except (BPUInputError, GraphError) as error:
            log.error("rule %s stopped: %s", smk.rule, error)
            print(error_block(smk.rule, error, log_path), file=sys.stderr, flush=True)
            raise SystemExit(EXIT_DIAGNOSED) from None
        except Exception:
            log.exception("rule %s failed", smk.rule)
            raise
        log.info("rule %s finished in %.2f s", smk.rule, time.perf_counter() - started)
        gc.freeze()   # the process exits next; spare it the collection of everything at shutdown
        return result
