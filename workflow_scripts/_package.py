"""Make the repository's package importable from a rule's script, whatever environment runs it
(a conda env made from envs/*.yaml does not have the package installed)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectome_bpu.rules import run_rule  # noqa: E402,F401  (re-exported for the rule scripts)
