"""Rule ``flywire_file`` of rules/acquire.smk; its work is ``connectome_bpu.rules.acquire.flywire_file``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.acquire import flywire_file
run_rule(snakemake, flywire_file)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
