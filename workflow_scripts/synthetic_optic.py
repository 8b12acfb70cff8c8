"""Rule ``synthetic_optic`` of rules/acquire.smk; its work is ``connectome_bpu.rules.acquire.synthetic_optic``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.acquire import synthetic_optic
run_rule(snakemake, synthetic_optic)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
