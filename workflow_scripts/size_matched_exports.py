"""Rule ``size_matched_exports`` of rules/acquire.smk; its work is ``connectome_bpu.rules.acquire.size_matched_exports``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.acquire import size_matched_exports
run_rule(snakemake, size_matched_exports)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
