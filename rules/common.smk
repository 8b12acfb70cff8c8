# Paths, wildcard constraints and the lists the DAG enumerates, all derived from the validated config.
import os
import re

from connectome_bpu import config as cfg
from connectome_bpu.errors import BPUInputError
from connectome_bpu.provenance import code_hash
from connectome_bpu.sources import EXPORT_FILES as SOURCE_EXPORT_FILES
from connectome_bpu.substrates import is_synthetic, primary_rois, substrate_kind
from connectome_bpu.tasks import TaskSpec

KIND = substrate_kind(config)
RESULTS = config["results_dir"]
RESOURCES = config["resources_dir"]


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


# Download caches: one entry per source and release (or server and dataset), shared by every run.
NEUPRINT_CACHE = (f"{RESOURCES}/neuprint/{_slug(config['neuprint']['server'])}/"
                  f"{_slug(config['neuprint']['dataset'])}/{config['connectome']}")
FLYWIRE_CACHE = f"{RESOURCES}/flywire/{config['flywire']['release']}"
if KIND.source == "zenodo":
    from connectome_bpu.sources.flywire import release_files

    FLYWIRE_FILES = {name: {"bytes": f.size, "md5": f.md5}
                     for name, f in release_files(config["flywire"]["release"], config["flywire"]["files"]).items()}
if KIND.source == "neuprint" and not os.path.exists(f"{NEUPRINT_CACHE}/provenance.json"):
    # Fail in seconds, before any job, rather than after the graph-independent jobs have run.
    from connectome_bpu.sources.neuprint_source import resolve_token

    try:
        resolve_token()
    except BPUInputError as error:
        raise WorkflowError(f"connectome={config['connectome']} reads {config['neuprint']['dataset']} from "
                            f"{config['neuprint']['server']} and needs a neuPrint token.\n{error}") from None
SUBSTRATE = cfg.substrate_name(config)
PRIMARY_ROIS = primary_rois(config)
MODELS = cfg.resolved_models(config)
SEEDS = [int(s) for s in config["seeds"]]
CONTROLS = cfg.control_models(MODELS)
TASK_VARIANT = TaskSpec.from_config(config["task"]).cache_name
MODE = config["training"]["train_recurrent"]

EXPORT_FILES = list(SOURCE_EXPORT_FILES)
SPECTRAL = {
    "power_tolerance": config["graph"]["spectral"]["power_tolerance"],
    "power_max_iterations": config["graph"]["spectral"]["power_max_iterations"],
}

# Snakemake's "code" rerun trigger sees only the thin workflow scripts; the logic lives in the package.
# Each rule therefore carries, as a param, a hash of the package modules that determine its output,
# so editing one of them reruns exactly the artifacts it can change (and nothing for gpu.py, say).
CODE = {
    "synthetic": code_hash("sources/__init__.py", "sources/synthetic_cx.py"),
    "local": code_hash("sources/__init__.py", "sources/local.py", "exports.py"),
    "neuprint": code_hash("sources/__init__.py", "sources/neuprint_source.py"),
    "cached_exports": code_hash("sources/__init__.py", "sources/flywire.py", "sources/download.py", "exports.py"),
    "graph": code_hash("graph.py", "pools.py", "signs.py", "spectral.py", "depth.py", "exports.py"),
    "controls": code_hash("controls.py", "spectral.py", "graph.py", "signs.py"),
    "tasks": code_hash("tasks.py"),
    "training": code_hash("job.py", "training.py", "models.py", "runtime.py", "tasks.py", "metrics.py",
                          "controls.py", "graph.py"),
    "reports": code_hash("reports/validation.py", "reports/checks.py", "controls.py", "tasks.py", "models.py"),
    "results": code_hash("results.py", "metrics.py"),
    "figures": code_hash("figures.py", "results.py"),
    "summary": code_hash("reports/summary.py", "results.py"),
}

wildcard_constraints:
    substrate=re.escape(SUBSTRATE),
    seed=r"\d+",
    flywire_file=r"proofread_[A-Za-z0-9_.-]+\.(npy|feather)",
    control="|".join(cfg.SHUFFLE_CONTROLS + tuple(c + cfg.DALE_SUFFIX for c in cfg.SHUFFLE_CONTROLS)
                     + ("no_recurrence",)),
    task_variant=re.escape(TASK_VARIANT),
    mode=re.escape(MODE),


def exports(name, substrate="{substrate}"):
    return f"{RESULTS}/{substrate}/exports/{name}"


def graph_file(name, substrate="{substrate}"):
    return f"{RESULTS}/{substrate}/graph/{name}"


def control_file(control="{control}", seed="{seed}", substrate="{substrate}"):
    return f"{RESULTS}/{substrate}/controls/{control}/seed{seed}.npz"


def run_dir(substrate="{substrate}", task_variant="{task_variant}", mode="{mode}"):
    return f"{RESULTS}/{substrate}/runs/{task_variant}/{mode}"


def run_file(name, substrate="{substrate}", task_variant="{task_variant}", mode="{mode}"):
    return f"{run_dir(substrate, task_variant, mode)}/{name}"


def log_file(name, substrate="{substrate}"):
    return f"{RESULTS}/{substrate}/logs/{name}.log"


def all_control_files(substrate=SUBSTRATE):
    return [control_file(c, s, substrate) for c in CONTROLS for s in SEEDS]


# --- task data and training jobs ------------------------------------------------------------------
from connectome_bpu.tasks import nested_train_subset, split_plan

SPLITS = {split.filename.removesuffix(".npz"): split for split in split_plan(config["task"])}
N_TRAIN = int(config["task"]["train"]["count"])
TRAIN_T = int(config["task"]["train"]["T"])
SE_COUNTS = sorted({nested_train_subset(N_TRAIN, f) for f in config["task"]["sample_efficiency_fractions"]}
                   - {N_TRAIN})
SE_MODELS = [m for m in config["task"]["sample_efficiency_models"] if m in MODELS]
PRIMARY_MODEL = cfg.primary_model_name(config)
# Keys that change the numbers a job produces; execution knobs (device, threads) are read from config
# inside the job, so switching them does not invalidate finished results.
TASK_PARAMS = {k: v for k, v in config["task"].items() if not k.startswith("sample_efficiency")}
TRAINING_PARAMS = {k: config["training"][k] for k in ("train_recurrent", "runtime", "lr", "patience", "min_delta",
                                                      "grad_clip", "batch_size", "epochs", "dense_max_neurons",
                                                      "gru_reference_max_hidden")}


wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    n_train=r"\d+",
    split_file="|".join(re.escape(s) for s in SPLITS),
    figure="error_vs_sequence_length|loss_curve|error_vs_noise|sample_efficiency",


def split_file(stem, task_variant="{task_variant}"):
    return f"{RESULTS}/tasks/{task_variant}/{stem}.npz"


def job_dir(model="{model}", seed="{seed}", n_train="{n_train}", substrate="{substrate}",
            task_variant="{task_variant}", mode="{mode}"):
    return f"{run_dir(substrate, task_variant, mode)}/{model}/seed{seed}/n{n_train}"


def job_file(name, model="{model}", seed="{seed}", n_train="{n_train}", substrate="{substrate}",
             task_variant="{task_variant}", mode="{mode}"):
    return f"{job_dir(model, seed, n_train, substrate, task_variant, mode)}/{name}"


def full_run_jobs(name, substrate="{substrate}", task_variant="{task_variant}", mode="{mode}"):
    return [job_file(name, m, s, N_TRAIN, substrate, task_variant, mode) for s in SEEDS for m in MODELS]


def sample_efficiency_jobs(name, substrate="{substrate}", task_variant="{task_variant}", mode="{mode}"):
    return [job_file(name, m, s, n, substrate, task_variant, mode)
            for n in SE_COUNTS for s in SEEDS for m in SE_MODELS]


def job_control_input(wildcards):
    """Shuffle controls train on their stored matrix; everything else on the primary matrix."""
    if cfg.control_base(wildcards.model) in cfg.SHUFFLE_CONTROLS:
        return control_file(wildcards.model, wildcards.seed, wildcards.substrate)
    return []
