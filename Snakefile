# connectome-bpu: does a real insect connectome, used as a frozen recurrent core, compute better than
# matched random and shuffled controls of the same size?  See README.md and docs/paths.md.
import sys

from snakemake.utils import min_version

min_version("9.0")
sys.path.insert(0, workflow.basedir)   # the package is importable from a clone even before `pip install -e .`

configfile: "config.yaml"

from connectome_bpu.config import validate_config
from connectome_bpu.errors import BPUInputError
from connectome_bpu.cross_region import condition_info, resolve_cross_region
from connectome_bpu.evidence import resolve_evidence
from connectome_bpu.experiments import resolve_experiments

try:
    validate_config(config)
    # The evidence plan (if any) adds its experiments and cross-region families, chosen by the selector.
    EVIDENCE, PLANNED = resolve_evidence(config)
    EXPERIMENTS = resolve_experiments(PLANNED)
    TRANSFER = resolve_cross_region(PLANNED, EXPERIMENTS)
except BPUInputError as error:
    # Stop before any job (dry runs included), naming the experiment, the key, the value and what is allowed.
    raise WorkflowError(str(error)) from None


include: "rules/common.smk"
include: "rules/acquire.smk"
include: "rules/graph.smk"
include: "rules/controls.smk"
include: "rules/tasks.smk"
include: "rules/train.smk"
include: "rules/report.smk"
include: "rules/results.smk"
include: "rules/cross_region.smk"
include: "rules/evidence.smk"
include: "rules/learning_rules.smk"


onstart:
    check_neuprint_token()


rule all:
    default_target: True
    input:
        [experiment_targets(experiment) for experiment in EXPERIMENTS.values()],
        CROSS_REGION_TARGETS,
        EVIDENCE_TARGETS,
        SEED_CHECK_TARGETS,


# `snakemake <experiment name>` builds one experiment.
check_experiment_names([r.name for r in workflow.rules])
for experiment in EXPERIMENTS.values():

    rule:
        name: experiment.name
        input:
            experiment_targets(experiment),
