"""Rule ``low_power_proxy`` of rules/evidence.smk; its work is ``connectome_bpu.rules.evidence.low_power_proxy``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.evidence import low_power_proxy
run_rule(snakemake, low_power_proxy)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
