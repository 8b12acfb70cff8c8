"""Experiments: named runs over one DAG that share every artifact they can.

``config.yaml`` holds shared defaults; ``experiments`` lists named runs, each a partial config that
overrides those defaults (its substrate, task, recurrent mode, models, seeds, training knobs, ...).
Each experiment resolves to a complete config, validated by the same schema as the defaults, and to
the identifiers of the artifacts it needs (docs/paths.md):

* a **substrate** directory (exports, graph cache, controls), named after the connectome; an
  experiment that changes how the substrate is built (``graph.*``, its generator's ``synthetic_*``) gets its own
  directory with a hash suffix, so it never overwrites the shared one;
* a **task variant** (split files), named after the task plus a hash of every knob that changes the
  files' content, shared by every substrate;
* a **training variant** (job directories), the recurrent mode plus a hash of every training knob
  that changes the numbers, so two experiments that differ only in epochs never collide, and two that
  agree share their jobs.

Identical settings always give identical identifiers, so Snakemake builds each artifact once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping

from .config import cross_key_problems, schema_problems, substrate_name
from .errors import BPUInputError
from .learning_rules import arm_params
from .model_names import (
    BPTT,
    arm_of,
    control_models,
    is_trained,
    primary_model_name,
    resolved_models,
)
from .plasticity_settings import is_plastic
from .substrates import is_synthetic
from .tasks import nested_train_subset, split_plan, task_spec

# Keys an experiment may not override: where results and downloads live, and the download sources
# (one cache per release or dataset serves every experiment).
SHARED_ONLY = ("results_dir", "resources_dir", "neuprint", "flywire", "experiments", "cross_region", "evidence",
               "seed_checks")
# Keys that describe the plan over experiments rather than one experiment: left out of each experiment's
# resolved config, so editing the plan does not touch the experiments it keeps.
PLAN_ONLY = ("experiments", "cross_region", "evidence", "seed_checks")
# Execution settings: they decide where and how fast a job runs, never its numbers, so they are shared.
EXECUTION_ONLY = (("training", "device"), ("training", "threads"))
# Keys that decide how a substrate's exports, graph cache and controls are built (plus, for an embedded
# substrate, its generator's own block: ``synthetic_cx`` or ``synthetic_mb``).
SUBSTRATE_KEYS = ("connectome", "local_exports", "local_name", "primary_rois", "graph")
# Training keys that change a trained model's numbers (device and threads do not).
TRAINING_KEYS = ("train_recurrent", "runtime", "lr", "patience", "min_delta", "grad_clip", "batch_size", "epochs",
                 "dense_max_neurons", "gru_reference_max_hidden", "input_init")
# Task keys that change split files (the sample-efficiency knobs only choose which jobs run).
SPLIT_KEYS = ("name", "heading_bins", "bump_kappa", "home_distance_scale", "landmark", "associative", "optic_flow",
              "data_seed", "train", "val", "test", "test_noise")
# Keys each task ignores: they never split its cache (an associative or optic-flow episode has one length,
# fixed by its knobs, so only the split counts of train/val/test matter to it).
_IGNORED_BY_TASK = {
    "cartesian": ("heading_bins", "bump_kappa", "home_distance_scale", "landmark", "associative", "optic_flow"),
    "cx_polar_bump": ("landmark", "associative", "optic_flow"),
    "cx_landmark_bump": ("associative", "optic_flow"),
    "mb_associative": ("heading_bins", "bump_kappa", "home_distance_scale", "landmark", "optic_flow", "test_noise"),
    "optic_flow": ("heading_bins", "bump_kappa", "home_distance_scale", "landmark", "associative", "test_noise"),
}
# Tasks whose episode length comes from their own knobs: the T values of train/val/test do not apply.
_FIXED_LENGTH_TASKS = ("mb_associative", "optic_flow")
UNTRAINED = "untrained"   # training variant of models that learn nothing (the mean predictor)
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_SUBSTRATE_NAMES = ("experiments", "tasks", "cross_region", "evidence", "learning_rules")   # sibling directories under results/


@dataclass(frozen=True)
class Experiment:
    """One named experiment: its resolved config and the identifiers of everything it needs."""

    name: str
    config: dict[str, Any]
    substrate: str
    task_variant: str
    training: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    primary: str
    se_counts: tuple[int, ...]
    se_models: tuple[str, ...]
    # (source substrate, target substrate, seed) when the substrate is the source cut or expanded to the
    # target's size (connectome_bpu.size_match); None for a substrate as built.
    size_match: tuple[str, str, int] | None = None

    @property
    def mode(self) -> str:
        return self.config["training"]["train_recurrent"]

    @property
    def task(self) -> dict[str, Any]:
        return self.config["task"]

    @property
    def n_train(self) -> int:
        return int(self.task["train"]["count"])

    @property
    def train_T(self) -> int:
        """Length of the training sequences (an associative or optic-flow episode has one, fixed by its knobs)."""
        return split_plan(self.task)[0].T

    @property
    def evaluation_split(self) -> str:
        """The ``split`` label of the clean in-distribution test rows (read at ``train_T``), where the headline
        comparisons are made: every task labels them ``test`` (an optic-flow test at another preset is
        ``test_<preset>``)."""
        return "test"

    @property
    def arms(self) -> list[str]:
        """The learning-rule arms beside bptt whose models this experiment trains (docs/learning_rule_arms.md)."""
        return [arm for arm in self.config["training"]["learning_rules"]["arms"] if arm != BPTT]

    @property
    def bptt_models(self) -> list[str]:
        """The models every experiment has (each learning by bptt, or not at all): what the summary, the sweep
        statistics and the standard figures compare. The arms' models have their own report."""
        return [m for m in self.models if arm_of(m) == BPTT]

    @property
    def controls(self) -> list[str]:
        return control_models(self.models)

    def training_variant(self, model: str) -> str:
        """The job-directory level of ``model``: models that do not learn share one variant, and a model trained by
        a learning-rule arm other than bptt gets the variant of its arm's knobs too."""
        if not is_trained(model):
            return UNTRAINED
        arm = arm_of(model)
        return self.training if arm == BPTT else training_variant(self.config["training"], arm)

    def jobs(self) -> list[tuple[str, int, int]]:
        """(model, seed, n_train) of every job: all models on the full train split, then the nested
        train subsets of the sample-efficiency models."""
        jobs = [(m, s, self.n_train) for s in self.seeds for m in self.models]
        jobs += [(m, s, n) for n in self.se_counts for s in self.seeds for m in self.se_models]
        return jobs


def short_hash(payload: Any) -> str:
    """Eight hex digits of the SHA-256 of ``payload`` as canonical JSON: a stable directory suffix."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:8]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` applied key by key (mappings merge; everything else replaces)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def split_settings(task_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The task settings that decide the split files' content.

    Knobs a task ignores (the bump knobs of ``cartesian``, the landmark knobs of every other task, ...) are
    left out, so they never split a cache, and the sample-efficiency knobs only choose which jobs run.
    """
    ignored = _IGNORED_BY_TASK[task_cfg["name"]]
    settings = {k: task_cfg[k] for k in SPLIT_KEYS if k not in ignored}
    if task_cfg["name"] in _FIXED_LENGTH_TASKS:
        settings.update({role: {"count": task_cfg[role]["count"]} for role in ("train", "val", "test")})
    return settings


def task_variant(task_cfg: Mapping[str, Any]) -> str:
    """Directory name of a task's split files: readable name plus a hash of what changes their content."""
    return f"{task_spec(task_cfg).cache_name}-{short_hash(split_settings(task_cfg))}"


def training_params(training_cfg: Mapping[str, Any], arm: str = BPTT) -> dict[str, Any]:
    """The training settings that change a trained model's numbers (for an arm other than bptt, with its knobs;
    the plasticity block only where it is on, so configs without it keep their result directories)."""
    params = {k: training_cfg[k] for k in TRAINING_KEYS}
    if is_plastic(training_cfg.get("plasticity")):
        params["plasticity"] = dict(training_cfg["plasticity"])
    if arm != BPTT:
        params["learning_rule"] = arm_params(training_cfg["learning_rules"], arm)
    return params


def training_variant(training_cfg: Mapping[str, Any], arm: str = BPTT) -> str:
    """``<mode>-<hash>``: the recurrent mode, readable, and a hash of every number-changing knob; an arm other
    than bptt adds ``-<arm>`` so its job directories say how they learnt."""
    suffix = "" if arm == BPTT else f"-{arm}"
    mode = training_cfg["train_recurrent"] + ("_plastic" if is_plastic(training_cfg.get("plasticity")) else "")
    return f"{mode}-{short_hash(training_params(training_cfg, arm))}{suffix}"



def substrate_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that decide one substrate's exports, graph cache and controls."""
    keys = SUBSTRATE_KEYS + ((config["connectome"],) if is_synthetic(config) else ())
    return {k: config.get(k) for k in keys}


def _substrate_id(resolved: dict[str, Any], shared: dict[str, Any]) -> str:
    """The connectome's name when the substrate is built with the shared settings, else name-hash."""
    same_source = {k: resolved.get(k) for k in ("connectome", "local_exports", "local_name", "primary_rois")}
    if substrate_settings(resolved) == substrate_settings(deep_merge(shared, same_source)):
        return substrate_name(resolved)
    return f"{substrate_name(resolved)}-{short_hash(substrate_settings(resolved))}"


def default_experiment_name(config: Mapping[str, Any]) -> str:
    """Name of the one experiment of a config without ``experiments``: substrate, task and mode."""
    raw = f"{substrate_name(config)}_{config['task']['name']}_{config['training']['train_recurrent']}"
    return re.sub(r"\W+", "_", raw)


def _override_problems(name: str, override: Mapping[str, Any]) -> list[str]:
    problems = [f"experiment '{name}': config key '{key}' is shared by every experiment and cannot be overridden "
                f"here; set it at the top level" for key in SHARED_ONLY if key in override]
    for section, key in EXECUTION_ONLY:
        if isinstance(override.get(section), Mapping) and key in override[section]:
            problems.append(f"experiment '{name}': config key '{section}.{key}' is an execution setting shared by "
                            f"every experiment; set it at the top level")
    return problems


def _experiment(name: str, resolved: dict[str, Any], substrate: str) -> Experiment:
    models = resolved_models(resolved)
    task = resolved["task"]
    n_train = int(task["train"]["count"])
    se_counts = sorted({nested_train_subset(n_train, f) for f in task["sample_efficiency_fractions"]} - {n_train})
    return Experiment(
        name=name, config=resolved, substrate=substrate, task_variant=task_variant(task),
        training=training_variant(resolved["training"]), models=tuple(models),
        seeds=tuple(int(s) for s in resolved["seeds"]), primary=primary_model_name(models),
        se_counts=tuple(se_counts),
        se_models=tuple(m for m in task["sample_efficiency_models"] if m in models))


def _declared(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    shared = {k: v for k, v in config.items() if k not in PLAN_ONLY}
    if not config.get("experiments"):
        return [(default_experiment_name(shared), {})]
    return [(str(entry.get("name")), {k: v for k, v in entry.items() if k != "name"})
            for entry in config["experiments"]]


def _size_match(experiments: dict[str, Experiment]) -> list[str]:
    """Give each size-matched experiment its own substrate, ``<source>-sized-<target>-s<seed>``, in place.

    The source (the substrate as built) stays in the DAG as the input of the size-matching rule; the
    target must be an experiment whose substrate is not size-matched itself.
    """
    problems = []
    for name, experiment in list(experiments.items()):
        match = experiment.config.get("size_match")
        if not match:
            continue
        target = experiments.get(match["like"])
        if target is None or target.config.get("size_match") or target.name == name:
            problems.append(f"experiment '{name}': size_match.like is {match['like']!r}; expected the name of another "
                            f"experiment whose substrate is not size-matched itself (one of "
                            f"{', '.join(n for n, e in experiments.items() if not e.config.get('size_match')) or 'none'})")
            continue
        sized = f"{experiment.substrate}-sized-{target.substrate}-s{match['seed']}"
        experiments[name] = replace(experiment, substrate=sized,
                                    size_match=(experiment.substrate, target.substrate, int(match["seed"])))
    return problems


def resolve_experiments(config: Mapping[str, Any]) -> dict[str, Experiment]:
    """Every experiment of a (schema-valid) config, resolved and validated; one error lists all problems.

    Each experiment's merged config is checked by the full schema, so an override of a key that does
    not exist, an unknown substrate, task or model, or a value out of range is reported with the
    experiment's name and the key.
    """
    shared = {k: v for k, v in config.items() if k not in PLAN_ONLY}
    problems: list[str] = []
    experiments: dict[str, Experiment] = {}
    owners: dict[str, tuple[str, dict]] = {}
    for name, override in _declared(config):
        if not NAME_PATTERN.match(name):
            problems.append(f"experiment name {name!r}: expected a letter followed by letters, digits or '_' (it "
                            "becomes a Snakemake target and a directory name)")
            continue
        if name in experiments:
            problems.append(f"experiment name '{name}' is used twice; experiment names must be unique")
            continue
        found = _override_problems(name, override)
        resolved = deep_merge(shared, override)
        if not found:
            found = [f"experiment '{name}': {p}" for p in schema_problems(resolved) or cross_key_problems(resolved)]
        if found:
            problems += found
            continue
        substrate = _substrate_id(resolved, shared)
        if substrate in RESERVED_SUBSTRATE_NAMES:
            problems.append(f"experiment '{name}': substrate name '{substrate}' is reserved for results/{substrate}/; "
                            "choose another local_name")
            continue
        settings = substrate_settings(resolved)
        if substrate in owners and owners[substrate][1] != settings:
            problems.append(f"experiments '{owners[substrate][0]}' and '{name}' both write results/{substrate}/ but "
                            "from different exports; give them different local_name values")
            continue
        owners.setdefault(substrate, (name, settings))
        experiments[name] = _experiment(name, resolved, substrate)
    if not problems:
        problems += _size_match(experiments)
    if problems:
        raise BPUInputError("invalid experiments:\n  - " + "\n  - ".join(problems))
    return experiments
