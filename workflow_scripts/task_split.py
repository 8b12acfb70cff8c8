"""Rule ``task_split`` of rules/tasks.smk; its work is ``connectome_bpu.rules.tasks.task_split``."""
from _package import run_rule  # first: puts the package on sys.path in any environment
from connectome_bpu.rules.tasks import task_split
run_rule(snakemake, task_split)  # noqa: F821  (``snakemake`` is provided by Snakemake's script directive)
