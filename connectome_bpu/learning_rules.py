"""Learning-rule arms as configuration: which arms a run trains, the knobs each one depends on, and what is refused.

An arm decides how a BPU's input adapter (``W_in``, ``b_in``) is credited on a frozen core; ``W_out`` always learns
by its exact, already local gradient (docs/learning_rule_arms.md). The arm's knobs are part of its models' training
variant (:func:`arm_params`), so changing ``pal.lr`` reruns the ``+pal`` jobs and nothing else, and two
experiments that agree on an arm share its jobs. The algorithms themselves live in ``connectome_bpu.arms``.
"""

from __future__ import annotations

from typing import Any, Mapping

from .model_names import BPTT, READOUT
from .plasticity_settings import is_plastic

TRUNCATED_ARMS = ("tbptt", "ccdni")          # credit cut at ``window`` timesteps
FEEDBACK_ARMS = ("fa", "pal")                # W_out^T replaced by a feedback matrix
FROZEN_ONLY_ARMS = ("ccdni", "fa", "pal", "gle")
CARRIERS = ("transpose", "forward", "random", "none")
# Families whose loss is a sum over timesteps that can be scored one step at a time (every arm but bptt scores
# the sequence step by step). The optic-flow loss skips its first frame by position, which a single step cannot see.
STEPWISE_TASKS = ("cartesian", "cx_polar_bump", "cx_landmark_bump", "mb_associative")


def arm_params(learning_rules: Mapping[str, Any], arm: str) -> dict[str, Any]:
    """The knobs that change the numbers of a model trained by ``arm`` (empty for bptt, whose jobs must not move
    when arm knobs change)."""
    if arm == BPTT:
        return {}
    params: dict[str, Any] = {"arm": arm, "fidelity_batch": learning_rules["fidelity_batch"]}
    if arm in TRUNCATED_ARMS:
        params["window"] = learning_rules["window"]
    if arm == "ccdni":
        params["ccdni"] = dict(learning_rules["ccdni"])
    if arm in FEEDBACK_ARMS:
        params["credit_window"] = learning_rules["credit_window"]
    if arm in FEEDBACK_ARMS + ("gle",):
        params["through_core"] = learning_rules["through_core"]
    if arm == "pal":
        params["pal"] = dict(learning_rules["pal"])
    return params


def learning_rule_problems(config: Mapping[str, Any]) -> list[str]:
    """Arm choices that cannot run with the rest of one resolved config, one line each (checked before any job;
    an unknown arm or a window below 1 is already refused by the schema, naming the key)."""
    rules = config["training"]["learning_rules"]
    arms = [arm for arm in rules["arms"] if arm != BPTT]
    problems = []
    mode = config["training"]["train_recurrent"]
    frozen_only = [arm for arm in arms if arm in FROZEN_ONLY_ARMS]
    if mode != "frozen" and frozen_only:
        problems.append(f"config keys 'training.learning_rules.arms' ({', '.join(frozen_only)}) and "
                        f"'training.train_recurrent' ({mode}): these arms credit the input adapter through a frozen "
                        "core (W_rec fixed); use train_recurrent: frozen, or only bptt/tbptt with a trained core")
    if arms and is_plastic(config["training"]["plasticity"]):
        problems.append(f"config keys 'training.learning_rules.arms' ({', '.join(arms)}) and "
                        f"'training.plasticity.rule' ({config['training']['plasticity']['rule']}): the arms credit "
                        "the adapters of a core without within-episode plasticity; use plasticity rule none, or only bptt")
    task = config["task"]["name"]
    stepwise = [arm for arm in arms if arm != READOUT]   # the floor scores whole sequences, like bptt
    if stepwise and task not in STEPWISE_TASKS:
        problems.append(f"config keys 'training.learning_rules.arms' ({', '.join(stepwise)}) and 'task.name' ({task}): "
                        f"arms other than bptt score the sequence one timestep at a time, which the {task} loss "
                        f"does not allow; use them with {', '.join(STEPWISE_TASKS)}")
    return problems
