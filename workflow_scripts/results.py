"""Aggregation, figure and summary rules (see rules/report.smk)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package, in any conda env

from connectome_bpu.results_steps import results_step
from connectome_bpu.workflow import run_step

run_step(snakemake, results_step)
