"""Rule ``seed_check`` of rules/learning_rules.smk; its work is ``connectome_bpu.rules.learning_rules.seed_check``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.learning_rules import seed_check
run_rule(snakemake, seed_check)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
