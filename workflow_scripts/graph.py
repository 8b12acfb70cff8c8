"""Graph-cache rules: pools, matrices, K and metadata (see rules/graph.smk)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the package, in any conda env


from connectome_bpu.steps import graph_step
from connectome_bpu.workflow import run_step

run_step(snakemake, graph_step)
