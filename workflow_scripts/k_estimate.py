"""Rule ``k_estimate`` of rules/graph.smk; its work is ``connectome_bpu.rules.graph.k_estimate``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.graph import k_estimate
run_rule(snakemake, k_estimate)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
