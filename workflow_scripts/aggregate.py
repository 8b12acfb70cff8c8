"""Rule ``aggregate`` of rules/results.smk; its work is ``connectome_bpu.rules.results.aggregate``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.results import aggregate
run_rule(snakemake, aggregate)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
