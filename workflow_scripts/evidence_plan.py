"""Rule ``evidence_plan`` of rules/evidence.smk; its work is ``connectome_bpu.rules.evidence.evidence_plan``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.evidence import evidence_plan
run_rule(snakemake, evidence_plan)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
