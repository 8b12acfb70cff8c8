"""Rule ``neuprint_download`` of rules/acquire.smk; its work is ``connectome_bpu.rules.acquire.neuprint_download``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.acquire import neuprint_download
run_rule(snakemake, neuprint_download)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
