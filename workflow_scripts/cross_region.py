"""Rule ``cross_region`` of rules/cross_region.smk; its work is ``connectome_bpu.rules.cross_region.cross_region``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.cross_region import cross_region
run_rule(snakemake, cross_region)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
