"""Rule ``train_model`` of rules/train.smk; its work is ``connectome_bpu.rules.train.train_model``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.train import train_model
run_rule(snakemake, train_model)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
