"""Rule ``seed_check_seed`` of rules/learning_rules.smk; its work is ``connectome_bpu.rules.learning_rules.seed_check_seed``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.learning_rules import seed_check_seed
run_rule(snakemake, seed_check_seed)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
