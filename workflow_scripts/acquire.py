"""Acquisition rules: write one substrate's raw exports (see rules/acquire.smk)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package, in any conda env

from connectome_bpu.steps import acquire_step
from connectome_bpu.workflow import run_step

run_step(snakemake, acquire_step)
