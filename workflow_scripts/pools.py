"""Rule ``pools`` of rules/graph.smk; its work is ``connectome_bpu.rules.graph.pools``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.graph import pools
run_rule(snakemake, pools)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
