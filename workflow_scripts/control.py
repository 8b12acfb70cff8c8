"""Rule ``control`` of rules/controls.smk; its work is ``connectome_bpu.rules.controls.control``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.controls import control
run_rule(snakemake, control)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
