"""Rule ``sweep_statistics`` of rules/results.smk; its work is ``connectome_bpu.rules.results.sweep_statistics``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.results import sweep_statistics
run_rule(snakemake, sweep_statistics)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
