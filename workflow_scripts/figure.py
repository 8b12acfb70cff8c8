"""Rule ``figure`` of rules/results.smk; its work is ``connectome_bpu.rules.results.figure``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.results import figure
run_rule(snakemake, figure)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
