"""Rule ``cached_exports`` of rules/acquire.smk; its work is ``connectome_bpu.rules.acquire.cached_exports``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.acquire import cached_exports
run_rule(snakemake, cached_exports)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
