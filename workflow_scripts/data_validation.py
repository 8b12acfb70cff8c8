"""Rule ``data_validation`` of rules/report.smk; its work is ``connectome_bpu.rules.report.data_validation``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.report import data_validation
run_rule(snakemake, data_validation)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
