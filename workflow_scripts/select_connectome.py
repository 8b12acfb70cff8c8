"""Rule ``select_connectome`` of rules/evidence.smk; its work is ``connectome_bpu.rules.evidence.select_connectome``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.evidence import select_connectome
run_rule(snakemake, select_connectome)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
