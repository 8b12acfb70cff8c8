"""Rule ``learning_rules_report`` of rules/learning_rules.smk; its work is ``connectome_bpu.rules.learning_rules``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.learning_rules import learning_rules_report
run_rule(snakemake, learning_rules_report)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
