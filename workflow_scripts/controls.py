"""Control-substrate rule: one control matrix per (substrate, control, seed) (see rules/controls.smk)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package, in any conda env

from connectome_bpu.steps import control_step
from connectome_bpu.workflow import run_step

run_step(snakemake, control_step)
