"""Task-split and training rules (see rules/tasks.smk and rules/train.smk)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package, in any conda env

from connectome_bpu.training_steps import training_step
from connectome_bpu.workflow import run_step

run_step(snakemake, training_step)
