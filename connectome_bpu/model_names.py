"""Every model name the pipeline knows, what kind of model it is, and the seed of each control.

One home for these names: the config schema, the workflow's wildcards, model construction, control
generation, reports and figures all ask this module. A model is one of

* a **connectome** model (``cx_bpu`` on a region, ``connectome_bpu`` on a whole brain): the BPU on the
  primary matrix;
* a **topology control**: the same BPU on a stored control matrix (``random``, ``degree_shuffle``,
  ``weight_shuffle`` and their Dale-preserving ``*_dale`` variants; ``random_weight_topology`` and
  ``random_sparse`` with Gaussian weights) or with the recurrence removed (``no_recurrence``);
* a **baseline**: GRUs (``gru`` with hidden = min(256, N), ``gru_matched`` with as many trainable
  parameters as the BPU's adapters) and the trivial ``mean_predictor``.

A BPU model trained by a learning-rule arm other than backpropagation through time is named
``<model>+<arm>`` (``cx_bpu+pal``, ``degree_shuffle+pal``): the same core, pools, seed and splits as
``<model>``, with its input adapter learnt by another rule (docs/learning_rule_arms.md). Every function here
that asks what kind of model a name is answers for the model under the arm.
"""

from __future__ import annotations

from typing import Any, Iterable

from .substrates import is_synthetic

# A control for training seed s is drawn with default_rng(offset + s); the offsets are those of the
# original benchmark, so its controls can be regenerated here (docs/departures.md#kept-for-comparability).
CONTROL_SEED_OFFSETS = {"random": 10000, "degree_shuffle": 20000, "weight_shuffle": 30000,
                        "random_weight_topology": 40000, "random_sparse": 50000}
SHUFFLE_CONTROLS = ("random", "degree_shuffle", "weight_shuffle")   # the primary's weights, moved around
# Fresh zero-mean Gaussian weights (sd = the primary's mean |w|), on the primary's support or on a uniform random
# one: they break the weight distribution and the sign structure on purpose, so they have no Dale variant.
GAUSSIAN_CONTROLS = ("random_weight_topology", "random_sparse")
DALE_SUFFIX = "_dale"
DALE_CONTROLS = tuple(name + DALE_SUFFIX for name in SHUFFLE_CONTROLS)
CONTROL_NAMES = SHUFFLE_CONTROLS + DALE_CONTROLS + GAUSSIAN_CONTROLS   # controls stored as a matrix file
NO_RECURRENCE = "no_recurrence"
CONNECTOME_MODELS = ("cx_bpu", "connectome_bpu")
GRU_MODELS = ("gru", "gru_matched")
MEAN_PREDICTOR = "mean_predictor"
BASELINE_MODELS = (MEAN_PREDICTOR,)
# Models whose core is "the given W": the primary connectome and every stored control.
BPU_MODELS = CONNECTOME_MODELS + CONTROL_NAMES
MODEL_NAMES = BPU_MODELS + (NO_RECURRENCE,) + GRU_MODELS + BASELINE_MODELS

# Learning-rule arms (docs/learning_rule_arms.md). ``bptt`` is how every model learns by default, so its models keep
# their plain names; the others run only on a frozen connectome core, except truncation and ``readout`` (the
# floor: the input adapter never learns), which any BPU allows.
BPTT = "bptt"
READOUT = "readout"
ARMS = (BPTT, "tbptt", "ccdni", "fa", "pal", "gle", READOUT)
ARM_SEPARATOR = "+"
ARM_CORE_MODELS = BPU_MODELS + (NO_RECURRENCE,)   # models with a connectome-like core, which arms can train

PRESETS = {
    "default": ["cx_bpu", NO_RECURRENCE, "random", "degree_shuffle", "weight_shuffle"],
    "structure": ["cx_bpu", "random", "degree_shuffle", "weight_shuffle", NO_RECURRENCE],
    "whole_brain": ["connectome_bpu", "random", "weight_shuffle"],
}


def arm_model_name(model: str, arm: str) -> str:
    """``cx_bpu`` under ``pal`` -> ``cx_bpu+pal``; under ``bptt`` the plain name."""
    return model if arm == BPTT else f"{model}{ARM_SEPARATOR}{arm}"


def split_arm(name: str) -> tuple[str, str]:
    """``cx_bpu+pal`` -> (``cx_bpu``, ``pal``); a plain name -> (name, ``bptt``)."""
    model, _, arm = name.partition(ARM_SEPARATOR)
    return model, arm or BPTT


def base_model(name: str) -> str:
    """The model under its learning-rule arm: what decides its core, control matrix and kind."""
    return split_arm(name)[0]


def arm_of(name: str) -> str:
    return split_arm(name)[1]


def arm_models(models: Iterable[str], arms: Iterable[str]) -> list[str]:
    """``<model>+<arm>`` for every arm other than bptt (in arm order) and every core model of ``models``."""
    cores = [m for m in models if m in ARM_CORE_MODELS]
    return [arm_model_name(m, arm) for arm in arms if arm != BPTT for m in cores]


def control_base(name: str) -> str:
    """``random_dale`` -> ``random``; plain names unchanged."""
    name = base_model(name)
    return name[: -len(DALE_SUFFIX)] if name.endswith(DALE_SUFFIX) else name


def is_dale(name: str) -> bool:
    return base_model(name).endswith(DALE_SUFFIX)


def is_stored_control(name: str) -> bool:
    """True for models that train on a stored control matrix (not the primary)."""
    return base_model(name) in CONTROL_NAMES


def is_trained(name: str) -> bool:
    """False for the mean predictor, which is computed from the train split without learning."""
    return name not in BASELINE_MODELS


def control_models(models: Iterable[str]) -> list[str]:
    """Models with a control file per seed: stored controls plus the no-recurrence marker (bptt names only:
    an arm's model uses the same control file as its plain model)."""
    return [m for m in models if m in CONTROL_NAMES or m == NO_RECURRENCE]


def control_seed(control: str, seed: int) -> int:
    """The RNG seed of a control for a training seed (Dale variants share their base's offset)."""
    return CONTROL_SEED_OFFSETS[control_base(control)] + int(seed)


def dale_controls_enabled(config: dict[str, Any]) -> bool:
    """Resolve ``controls.dale``; ``auto`` is on only where the primary matrix is known to be signed before it
    is built: ``force_signed``, or an embedded substrate whose every neuron carries a transmitter label."""
    dale = config["controls"]["dale"]
    if dale != "auto":
        return bool(dale)
    policy = config["graph"]["signed_policy"]
    fully_labelled = is_synthetic(config) and config[config["connectome"]]["transmitter_coverage"] == 1
    return policy == "force_signed" or (policy == "auto" and fully_labelled)


def _preset(config: dict[str, Any]) -> list[str]:
    comparison = config["comparison"]
    if comparison == "default" and config["connectome"] == "flywire_whole":
        comparison = "whole_brain"
    return list(PRESETS[comparison])


def resolved_models(config: dict[str, Any]) -> list[str]:
    """Every model a run trains or evaluates, in table order: connectome, controls, baselines."""
    models = list(config["models"]) if config.get("models") else _preset(config)
    if dale_controls_enabled(config):
        for name in list(models):
            if name in SHUFFLE_CONTROLS and name + DALE_SUFFIX not in models:
                models.append(name + DALE_SUFFIX)
    models += arm_models(models, config["training"]["learning_rules"]["arms"])
    if config["training"]["include_gru"]:
        models += [m for m in GRU_MODELS if m not in models]
    models += [m for m in BASELINE_MODELS if m not in models]
    return models


def primary_model_name(models: Iterable[str]) -> str:
    """The connectome model of a run: ``connectome_bpu`` when it is in the run, else ``cx_bpu``."""
    return "connectome_bpu" if "connectome_bpu" in list(models) else "cx_bpu"


def comparison_sets(models: Iterable[str], primary: str) -> list[tuple[str, list[str]]]:
    """(connectome model, the models it is paired with) per learning-rule arm of a run.

    Under bptt the connectome model meets every other plain model; under another arm, ``<primary>+<arm>`` meets
    each control trained by the same arm (the topology comparison within the rule) and the GRU and trivial
    baselines, so every table of an arm still shows the parameter-matched and the trivial reference.
    """
    models = list(models)
    plain = [m for m in models if arm_of(m) == BPTT]
    baselines = [m for m in plain if m in GRU_MODELS + BASELINE_MODELS]
    sets = [(primary, [m for m in plain if m != primary])]
    for arm in dict.fromkeys(arm_of(m) for m in models if arm_of(m) != BPTT):
        under_arm = [m for m in models if arm_of(m) == arm and base_model(m) != primary]
        sets.append((arm_model_name(primary, arm), under_arm + baselines))
    return sets

