"""Rule ``synthetic_cx`` of rules/acquire.smk; its work is ``connectome_bpu.rules.acquire.synthetic_cx``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.acquire import synthetic_cx
run_rule(snakemake, synthetic_cx)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
