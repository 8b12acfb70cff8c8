"""Rule ``graph_metadata`` of rules/graph.smk; its work is ``connectome_bpu.rules.graph.graph_metadata``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.graph import graph_metadata
run_rule(snakemake, graph_metadata)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
