# What the DAG enumerates, derived from the resolved experiments: the substrates, task variants and
# training variants they need, the path of every artifact, and the named helpers rules call for their
# inputs and params. The path scheme is described in docs/paths.md.
import os
import re

from snakemake.logging import logger

from connectome_bpu.code_deps import module_code_hash, pin_script_mtimes, rule_code_hash
from connectome_bpu.errors import BPUInputError
from connectome_bpu.evidence_plan import state_fingerprint
from connectome_bpu.experiments import UNTRAINED, split_settings, training_params
from connectome_bpu.figure_names import EXAMPLE_FIGURES, FIGURES, figures_for
from connectome_bpu.metrics import EXAMPLES_FILE, PRIMARY_METRIC
from connectome_bpu.model_names import CONTROL_NAMES, NO_RECURRENCE, arm_of, base_model, is_stored_control, is_trained
from connectome_bpu.sources import EXPORT_FILES
from connectome_bpu.substrates import KINDS, is_synthetic, primary_rois, substrate_kind
from connectome_bpu.seed_checks import check_module
from connectome_bpu.tasks import split_plan

for _script in pin_script_mtimes():   # staleness of code is decided by content: see code_deps.py
    logger.warning(f"could not pin the mtime of {_script}; a newer copy of it reruns the jobs that use it")
RESULTS = config["results_dir"]
RESOURCES = config["resources_dir"]
GRAPH_FILES = ("pool_assignments.csv", "adjacency_unsigned.npz", "graph_arrays.npz", "matrix_info.json",
               "k_estimate.json", "graph_metadata.json")
REPORTS = ("data_validation", "bpu_validation", "control_validation")
SWEEP_FILES = ("sweep/leaderboard.csv", "sweep/paired_comparisons.csv", "sweep/matched_topology_comparisons.csv",
               "sweep/sweep_report.md")
TABLES = ("metrics_by_seed.csv", "metrics_summary.csv", "loss_history.csv", "paired_differences.csv",
          "sample_efficiency_by_seed.csv")

# Every substrate, task variant and training variant some experiment needs, with the settings that
# define it. Equal identifiers have equal settings by construction (connectome_bpu.experiments).
SUBSTRATES = {e.substrate: e.config for e in EXPERIMENTS.values()}
# Size-matched substrates: (source substrate as built, target substrate, seed); each source is built too.
SIZE_MATCHED = {e.substrate: e.size_match for e in EXPERIMENTS.values() if e.size_match}
for _e in EXPERIMENTS.values():
    if _e.size_match:
        SUBSTRATES.setdefault(_e.size_match[0], {**_e.config, "size_match": None})
TASKS = {e.task_variant: split_settings(e.task) for e in EXPERIMENTS.values()}
TRAININGS = {e.training_variant(m): training_params(e.config["training"], arm_of(m))
             for e in EXPERIMENTS.values() for m in e.models if is_trained(m)}
TRAININGS[UNTRAINED] = {}
SPLITS = {variant: {s.filename.removesuffix(".npz"): s for s in split_plan(task)} for variant, task in TASKS.items()}


def substrates_from(*sources):
    """Substrates whose exports come from one of these sources (size-matched ones come from their source)."""
    return [name for name, cfg in SUBSTRATES.items()
            if substrate_kind(cfg).source in sources and name not in SIZE_MATCHED]


def substrates_of(connectome):
    return [name for name in substrates_from("synthetic") if SUBSTRATES[name]["connectome"] == connectome]


def one_of(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    names = sorted(set(names))
    return "|".join(re.escape(n) for n in names) if names else r"(?!)"


def check_experiment_names(rule_names):
    """Experiment names become targets, so none may shadow a rule of the workflow."""
    clash = sorted(set(EXPERIMENTS) & set(rule_names))
    if clash:
        raise WorkflowError(f"invalid experiments:\n  - experiment name(s) {', '.join(clash)} are also names of "
                            "rules of this workflow; choose other names")


# --- download caches: one entry per source and release (or server and dataset), shared by every run ---
def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


NEUPRINT_CACHE = f"{RESOURCES}/neuprint/{_slug(config['neuprint']['server'])}/{_slug(config['neuprint']['dataset'])}"
FLYWIRE_CACHE = f"{RESOURCES}/flywire/{config['flywire']['release']}"
FLYWIRE_FILES = {}
if substrates_from("zenodo"):
    from connectome_bpu.sources.flywire import release_files

    FLYWIRE_FILES = {name: {"bytes": f.size, "md5": f.md5}
                     for name, f in release_files(config["flywire"]["release"], config["flywire"]["files"]).items()}


def check_neuprint_token():
    """A real run that must download from neuPrint stops before its first job when no token is set.

    Called from ``onstart`` (the Snakefile), which Snakemake skips in dry runs: a plan that includes
    neuPrint substrates can be listed on a laptop without a token, and running it fails in seconds,
    before the graph-independent jobs have run.
    """
    for substrate in substrates_from("neuprint"):
        connectome = SUBSTRATES[substrate]["connectome"]
        if os.path.exists(f"{NEUPRINT_CACHE}/{connectome}/provenance.json"):
            continue
        from connectome_bpu.sources.neuprint_source import resolve_token

        try:
            resolve_token()
        except BPUInputError as error:
            raise WorkflowError(f"connectome={connectome} reads {config['neuprint']['dataset']} from "
                                f"{config['neuprint']['server']} and needs a neuPrint token.\n{error}") from None


wildcard_constraints:
    substrate=one_of(SUBSTRATES),
    task_variant=one_of(TASKS),
    training=one_of(TRAININGS),
    experiment=one_of(EXPERIMENTS),
    model=one_of({m for e in EXPERIMENTS.values() for m in e.models}),
    control=one_of(CONTROL_NAMES + (NO_RECURRENCE,)),
    seed=r"\d+",
    n_train=r"\d+",
    split_file=one_of(stem for splits in SPLITS.values() for stem in splits),
    figure=one_of(FIGURES),
    connectome=one_of(name for name, kind in KINDS.items() if kind.source == "neuprint"),
    flywire_file=r"proofread_[A-Za-z0-9_.-]+\.(npy|feather)",


# --- cross-region transfer (an empty plan when config has no cross_region) --------------------------
CROSS_REGION = f"{RESULTS}/cross_region"
CROSS_REGION_CONDITIONS = [info for family in TRANSFER for info in condition_info(family, EXPERIMENTS)]
CROSS_REGION_SIZE_MATCHED = sorted({info["substrate"] for info in CROSS_REGION_CONDITIONS
                                    if info["substrate"] in SIZE_MATCHED})
CROSS_REGION_TARGETS = ([f"{CROSS_REGION}/{name}" for name in ("cross_region_success_by_seed.csv",
                                                                "cross_region_advantage.csv", "summary.md",
                                                                "figures/cross_region_task_success.png")]
                        if TRANSFER else [])


# --- paths (docs/paths.md) -------------------------------------------------------------------------
def exports(name, substrate="{substrate}"):
    return f"{RESULTS}/{substrate}/exports/{name}"


def graph_file(name, substrate="{substrate}"):
    return f"{RESULTS}/{substrate}/graph/{name}"


def control_file(control="{control}", seed="{seed}", substrate="{substrate}"):
    return f"{RESULTS}/{substrate}/controls/{control}/seed{seed}.npz"


def substrate_log(name, substrate="{substrate}"):
    return f"{RESULTS}/{substrate}/logs/{name}.log"


def split_file(stem="{split_file}", task_variant="{task_variant}"):
    return f"{RESULTS}/tasks/{task_variant}/{stem}.npz"


def job_file(name, model="{model}", seed="{seed}", n_train="{n_train}", substrate="{substrate}",
             task_variant="{task_variant}", training="{training}"):
    return f"{RESULTS}/{substrate}/runs/{task_variant}/{training}/{model}/seed{seed}/n{n_train}/{name}"


def experiment_file(name, experiment="{experiment}"):
    return f"{RESULTS}/experiments/{experiment}/{name}"


def experiment_log(name):
    return experiment_file(f"logs/{name}.log")


# --- what one experiment needs -------------------------------------------------------------------
def experiment_jobs(experiment, name, sample_efficiency=None):
    """``name`` in the directory of each job of ``experiment`` (only the sample-efficiency subsets, or
    only the full-size jobs, when ``sample_efficiency`` is True or False)."""
    return [job_file(name, model, seed, n_train, experiment.substrate, experiment.task_variant,
                     experiment.training_variant(model))
            for model, seed, n_train in experiment.jobs()
            if sample_efficiency is None or sample_efficiency == (n_train != experiment.n_train)]


def arm_report_files(experiment):
    """The learning-rule report of an experiment that trains arms beside bptt (none otherwise)."""
    if not experiment.arms:
        return []
    return [experiment_file(f"learning_rules/{name}", experiment.name)
            for name in ("arm_metrics.csv", "arm_comparisons.csv", "summary.md", "arm_learning_curves.png",
                         "gradient_fidelity.png")]


def experiment_controls(experiment):
    return [control_file(c, s, experiment.substrate) for c in experiment.controls for s in experiment.seeds]


def experiment_splits(experiment):
    return [split_file(stem, experiment.task_variant) for stem in SPLITS[experiment.task_variant]]


def experiment_targets(experiment):
    """Everything `snakemake <experiment name>` builds.

    Intermediate artifacts are listed too: Snakemake rebuilds a deleted file only when a target asks for
    it, so a deleted job's metrics (or control, or split) is planned again with exactly what depends on it.
    """
    return ([experiment_file(name, experiment.name) for name in ("summary.md", "run_manifest.json") + SWEEP_FILES]
            + [experiment_file(f"reports/{name}.md", experiment.name) for name in REPORTS]
            + [experiment_file(f"figures/{name}.png", experiment.name) for name in figures_for(experiment.task["name"])]
            + [exports(name, experiment.substrate) for name in (*EXPORT_FILES, "provenance.json")]
            + [graph_file(name, experiment.substrate) for name in GRAPH_FILES]
            + arm_report_files(experiment) + experiment_controls(experiment) + experiment_splits(experiment)
            + [path for name in ("checkpoint.pt", "loss_history.csv", "metrics.csv")
               for path in experiment_jobs(experiment, name)])


# --- named input and param functions (Snakemake calls them with the job's wildcards) --------------
def _experiment(wildcards):
    return EXPERIMENTS[wildcards.experiment]


def experiment_value(attribute, *keys):
    """Param function: ``attribute`` of the job's experiment, then ``keys`` into it (a config path)."""

    def value(wildcards):
        found = getattr(_experiment(wildcards), attribute)
        for key in keys:
            found = found[key]
        return found

    return value


def experiment_input(path_of, *args):
    """Input function: ``path_of(*args, <the experiment's substrate>)`` (one of the substrate paths)."""

    def paths(wildcards):
        substrate = _experiment(wildcards).substrate
        return [path_of(arg, substrate) for arg in args] if len(args) > 1 else path_of(*args, substrate)

    return paths


def job_files(name, sample_efficiency=None):
    """Input function: ``name`` from every job of the experiment (see :func:`experiment_jobs`)."""

    def paths(wildcards):
        return experiment_jobs(_experiment(wildcards), name, sample_efficiency)

    return paths


def controls_of_experiment(wildcards):
    return experiment_controls(_experiment(wildcards))


def figures_of_experiment(wildcards):
    experiment = _experiment(wildcards)
    return [experiment_file(f"figures/{name}.png", experiment.name) for name in figures_for(experiment.task["name"])]


def _example_jobs(wildcards):
    """(model, job) of the first seed's full-size jobs, for the figures that draw example episodes."""
    experiment = _experiment(wildcards)
    if wildcards.figure not in EXAMPLE_FIGURES:
        return []
    first = experiment.seeds[0]
    return [(model, job_file(EXAMPLES_FILE, model, seed, n_train, experiment.substrate, experiment.task_variant,
                             experiment.training_variant(model)))
            for model, seed, n_train in experiment.jobs() if seed == first and n_train == experiment.n_train]


def figure_examples(wildcards):
    return [path for _, path in _example_jobs(wildcards)]


def figure_example_models(wildcards):
    return [model for model, _ in _example_jobs(wildcards)]


def splits_of_experiment(wildcards):
    return experiment_splits(_experiment(wildcards))


def task_of_experiment(wildcards):
    return split_settings(_experiment(wildcards).task)


def substrate_value(*keys):
    """Param function: ``keys`` into the resolved config that defines the job's substrate."""

    def value(wildcards):
        found = SUBSTRATES[wildcards.substrate]
        for key in keys:
            found = found[key]
        return found

    return value


def substrate_pool_rule(wildcards):
    return substrate_kind(SUBSTRATES[wildcards.substrate]).pool_rule


def substrate_rois(wildcards):
    return primary_rois(SUBSTRATES[wildcards.substrate])


def substrate_is_synthetic(wildcards):
    return is_synthetic(SUBSTRATES[wildcards.substrate])


def task_settings(wildcards):
    return TASKS[wildcards.task_variant]


def training_settings(wildcards):
    return TRAININGS[wildcards.training]


def split_name(wildcards):
    return SPLITS[wildcards.task_variant][wildcards.split_file].name


def task_split_files(wildcards):
    return [split_file(stem, wildcards.task_variant) for stem in SPLITS[wildcards.task_variant]]


def job_control_input(wildcards):
    """Stored controls train on their own matrix; everything else on the primary matrix."""
    model = base_model(wildcards.model)   # a learning-rule arm's model runs on its plain model's core
    return control_file(model, wildcards.seed, wildcards.substrate) if is_stored_control(model) else []


def train_threads(wildcards):
    return config["training"]["threads"] if is_trained(wildcards.model) else 1


def train_gpus(wildcards):
    return 1 if is_trained(wildcards.model) else 0


# --- acquisition: where a substrate's exports come from -------------------------------------------
def local_export_files(wildcards):
    source = SUBSTRATES[wildcards.substrate]["local_exports"]
    return {"neurons": f"{source}/neurons.csv", "connections": f"{source}/connections.csv"}


def cached_source_files(wildcards):
    """The download cache a substrate's exports are made from; `ancient`, since checksums fix their content."""
    cfg = SUBSTRATES[wildcards.substrate]
    if substrate_kind(cfg).source == "neuprint":
        return ancient(f"{NEUPRINT_CACHE}/{cfg['connectome']}/provenance.json")
    return [ancient(f"{FLYWIRE_CACHE}/{name}") for name in FLYWIRE_FILES]


def size_match_source_exports(wildcards):
    source = SIZE_MATCHED[wildcards.substrate][0]
    return [exports(name, source) for name in (*EXPORT_FILES, "provenance.json")]


def size_match_target_info(wildcards):
    return graph_file("matrix_info.json", SIZE_MATCHED[wildcards.substrate][1])


def size_match_seed(wildcards):
    return SIZE_MATCHED[wildcards.substrate][2]


def cached_source(wildcards):
    return substrate_kind(SUBSTRATES[wildcards.substrate]).source


def flywire_optic_lobe_settings(wildcards):
    """flywire_optic_lobe: its neuropils, cap and the pool settings its cap's input neurons follow; {} otherwise
    (so the other substrates' params, and their exports, do not change with these keys)."""
    cfg = SUBSTRATES[wildcards.substrate]
    if cfg["connectome"] != "flywire_optic_lobe":
        return {}
    return {**cfg["flywire"]["optic_lobe"], "pools": cfg["graph"]["pools"]}


def cached_exports_memory(wildcards):
    return 16000 if cached_source(wildcards) == "zenodo" else 2000


def neuprint_rois(wildcards):
    return list(KINDS[wildcards.connectome].primary_rois)


def flywire_expected(wildcards):
    return FLYWIRE_FILES[wildcards.flywire_file]


# --- the evidence plan (docs/evidence_planning.md): its files, and the records its rules take as params ----------
EVIDENCE_DIR = f"{RESULTS}/evidence"
PLAN_ITEMS = EVIDENCE.items if EVIDENCE else ()
SELECTOR_FILES = [f"{EVIDENCE_DIR}/selectors/{task}.{ext}" for task in (EVIDENCE.tasks if EVIDENCE else [])
                  for ext in ("json", "md")]
LOW_POWER_FILES = {name: f"{EVIDENCE_DIR}/low_power_proxy/{name}" for name in
                   ("low_power_proxy_summary.csv", "low_power_operations.csv", "low_power_latency.csv",
                    "measured_latency.csv", "low_power_proxy_report.md")}
EVIDENCE_REPORT_FILES = {"report": f"{EVIDENCE_DIR}/evidence_report.md",
                         "checklist": f"{EVIDENCE_DIR}/evidence_checklist.json",
                         "figure": f"{EVIDENCE_DIR}/figures/connectome_advantage.png"}
EVIDENCE_TARGETS = ([*EVIDENCE_REPORT_FILES.values(), *SELECTOR_FILES, *LOW_POWER_FILES.values()]
                    + [path for name in (EVIDENCE.experiments if EVIDENCE else [])
                       for path in experiment_targets(EXPERIMENTS[name])]
                    + (CROSS_REGION_TARGETS if EVIDENCE and EVIDENCE.transfer else [])) if EVIDENCE else []


def evidence_experiment(item):
    return EXPERIMENTS[item.experiment]


def plan_substrates():
    """Each substrate of the plan's items once, with the first item that uses it (its task sizes the proxy)."""
    found = {}
    for item in PLAN_ITEMS:
        found.setdefault(evidence_experiment(item).substrate, item)
    return found


def primary_jobs(experiment):
    """The connectome model's full-size jobs of an experiment: all that cross-region transfer reads from it."""
    return [job_file("metrics.csv", model, seed, n_train, experiment.substrate, experiment.task_variant,
                     experiment.training_variant(model))
            for model, seed, n_train in experiment.jobs()
            if model == experiment.primary and n_train == experiment.n_train]


def plan_description():
    """Plain records of the plan for the report and the plan export (rule params; changes rerun them)."""
    if not EVIDENCE:
        return {}
    items = []
    for item in EVIDENCE.items:
        experiment = evidence_experiment(item)
        items.append({"name": item.name, "claim": item.claim, "priority": item.priority, "task": item.task,
                      "experiment": experiment.name, "substrate": experiment.substrate,
                      "connectome": item.connectome, "models": list(experiment.models),
                      "seeds": list(experiment.seeds), "primary": experiment.primary,
                      "split": experiment.evaluation_split, "train_T": experiment.train_T,
                      "n_train": experiment.n_train, "metric": PRIMARY_METRIC[experiment.task["name"]],
                      "jobs": [{"model": model, "seed": seed, "n_train": n_train,
                                "metrics": job_file("metrics.csv", model, seed, n_train, experiment.substrate,
                                                    experiment.task_variant, experiment.training_variant(model))}
                               for model, seed, n_train in experiment.jobs()],
                      "controls": experiment_controls(experiment),
                      "dir": os.path.dirname(experiment_file("summary.md", experiment.name))})
    transfer = [{"family": f.family, "matched": f.matched, "mismatched": f.mismatched,
                 "size_matched": f.size_matched,
                 "jobs": [path for name in (f.matched, f.mismatched, f.size_matched) if name
                          for path in primary_jobs(EXPERIMENTS[name])]}
                for f in EVIDENCE.transfer]
    return {"items": items, "transfer": transfer, "transfer_priority": EVIDENCE.transfer_priority,
            "seeds": list(EVIDENCE.seeds), "tasks": EVIDENCE.tasks,
            "substrates": {substrate: os.path.dirname(graph_file("graph_metadata.json", substrate)) for substrate in plan_substrates()},
            "cross_region_dir": CROSS_REGION if EVIDENCE.transfer else None,
            "selectors": {task: {"json": f"{EVIDENCE_DIR}/selectors/{task}.json",
                                 "md": f"{EVIDENCE_DIR}/selectors/{task}.md",
                                 "connectome": EVIDENCE.selection(task).selected.connectome}
                          for task in EVIDENCE.tasks},
            "low_power": LOW_POWER_FILES}


def plan_configs():
    """Each plan experiment's resolved config: what its run manifest must have been written under."""
    return {name: EXPERIMENTS[name].config for name in (EVIDENCE.experiments if EVIDENCE else [])}


def selector_metadata(wildcards):
    """The prepared graph metadata of the substrate the plan runs the selector's task on."""
    item = next(item for item in EVIDENCE.items if item.task == wildcards.evidence_task)
    return graph_file("graph_metadata.json", evidence_experiment(item).substrate)


def selector_planned(wildcards):
    return EVIDENCE.selection(wildcards.evidence_task).selected.connectome


def low_power_substrates():
    """Per plan substrate: its graph directory and the task, training length and batch of the item that uses it."""
    found = {}
    for substrate, item in plan_substrates().items():
        experiment = evidence_experiment(item)
        found[substrate] = {"graph_dir": os.path.dirname(graph_file("graph_metadata.json", substrate)), "experiment": experiment.name,
                            "task": experiment.task, "T": experiment.train_T,
                            "batch": experiment.config["training"]["batch_size"]}
    return found


PLAN = plan_description()   # once: the overview, the report and the plan export all take this record


def evidence_state_fingerprint():
    """What the plan export's states depend on: every planned file's presence and mtime, and the code.

    A params change reruns the export, so `snakemake evidence_plan` refreshes it exactly when a job ran,
    a file was deleted or the code changed, and does nothing otherwise.
    """
    if not EVIDENCE:
        return ""
    return state_fingerprint(EVIDENCE_TARGETS + SELECTOR_FILES + list(LOW_POWER_FILES.values()))


def evidence_targets(wildcards):
    if not EVIDENCE:
        raise WorkflowError("target 'evidence': this config has no evidence plan; run it with "
                            "--configfile configs/evidence.yaml (or configs/evidence_small.yaml offline)")
    return EVIDENCE_TARGETS


# --- learning-rule arms and seed-system checks (rules/learning_rules.smk) ---

def arm_experiment_name(wildcards):
    return wildcards.arm_experiment


def arm_experiment_metadata(wildcards):
    return graph_file("graph_metadata.json", EXPERIMENTS[wildcards.arm_experiment].substrate)


def arm_experiment_figures(wildcards):
    return EXPERIMENTS[wildcards.arm_experiment].config["figures"]


def arm_report_settings(wildcards):
    """What the learning-rule report of an experiment compares (connectome_bpu.rules.learning_rules)."""
    experiment = EXPERIMENTS[wildcards.arm_experiment]
    return {"task": experiment.task["name"], "primary": experiment.primary, "arms": experiment.arms,
            "models": list(experiment.models), "seeds": list(experiment.seeds),
            "split": experiment.evaluation_split, "T": experiment.train_T, "n_train": experiment.n_train,
            "epochs": experiment.config["training"]["epochs"], "level": experiment.config["statistics"]["interval"],
            "threshold_margin": experiment.config["training"]["learning_rules"]["threshold_margin"]}


def seed_check_settings():
    """Which seeds and preset every seed-system check runs (top-level ``seed_checks`` of the config)."""
    return config.get("seed_checks") or {"seeds": [], "preset": "default"}


def seed_check_seed_file(name):
    """One seed's table of a check: ``name`` is by_seed.csv or curves.csv."""
    return f"{SEED_CHECKS_DIR}/{{check}}/seeds/seed{{seed}}/{name}"


def seed_check_seed_files(name):
    """The per-seed tables ``name`` of the check in the wildcards, one per configured seed."""
    def files(wildcards):
        return [f"{SEED_CHECKS_DIR}/{wildcards.check}/seeds/seed{seed}/{name}"
                for seed in seed_check_settings()["seeds"]]
    return files


def seed_check_code(wildcards):
    """Code hash of the check's own module, which the rule functions load by name (connectome_bpu.seed_checks)."""
    return module_code_hash(check_module(wildcards.check))
