"""Make the repository's package importable from a rule's script, whatever environment runs it
(a conda env made from envs/*.yaml does not have the package installed).

Every rule script imports this module first, so it also pauses garbage collection for the rule's imports;
``run_rule`` resumes it (why: ``connectome_bpu.rules``).
"""
import gc
import sys
from pathlib import Path

gc.disable()   # resumed by run_rule once the rule's imports are done

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectome_bpu.rules import run_rule  # noqa: E402,F401  (re-exported for the rule scripts)
