"""Config validation: bad values stop snakemake before any job, naming experiment, key, value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from connectome_bpu.config import validate_config
from connectome_bpu.errors import BPUInputError
from connectome_bpu.experiments import resolve_experiments
from connectome_bpu.model_names import MODEL_NAMES, resolved_models
from conftest import REPO, run_snakemake, write_config

BASE = yaml.safe_load((REPO / "config.yaml").read_text())


def _validated(config: dict) -> dict:
    return resolve_experiments(validate_config(config))


@pytest.mark.parametrize("key_path, value, expected", [
    (("graph", "rho_target"), -0.5, "config key 'graph.rho_target' has value -0.5; allowed: a number > 0"),
    (("graph", "rho_target"), 2, "config key 'graph.rho_target' has value 2; allowed: a number <= 1"),
    (("graph", "signed_policy"), "maybe", "config key 'graph.signed_policy' has value 'maybe'; allowed: one of 'auto'"),
    (("graph", "whole_brain_pool_fraction"), 0.7, "config key 'graph.whole_brain_pool_fraction' has value 0.7; allowed: a number < 0.5"),
    (("training", "batch_size"), 0, "config key 'training.batch_size' has value 0; allowed: a number >= 1"),
    (("training", "device"), "gpu", "config key 'training.device' has value 'gpu'; allowed: one of 'auto', 'cuda', 'cpu'"),
    (("task", "heading_bins"), 2, "config key 'task.heading_bins' has value 2; allowed: a number >= 4"),
    (("seeds",), "0", "config key 'seeds' has value '0'; allowed: a value of type array"),
    (("synthetic_cx", "copies"), 1.5, "config key 'synthetic_cx.copies' has value 1.5; allowed: a value of type integer"),
    (("local_name",), "..", "config key 'local_name' has value '..'; allowed: a string matching"),
    (("local_name",), "../elsewhere", "config key 'local_name' has value '../elsewhere'"),
    (("training", "plasticity", "retention"), 1.5,
     "config key 'training.plasticity.retention' has value 1.5; allowed: a number <= 1"),
    (("training", "plasticity", "rule"), "hebbian",
     "config key 'training.plasticity.rule' has value 'hebbian'; allowed: one of 'none', 'modulated_depression'"),
])
def test_schema_errors_name_key_value_and_allowed(key_path, value, expected):
    config = copy.deepcopy(BASE)
    node = config
    for key in key_path[:-1]:
        node = node[key]
    node[key_path[-1]] = value
    with pytest.raises(BPUInputError) as err:
        _validated(config)
    assert expected in str(err.value)


def test_unknown_key_and_cross_key_rules():
    config = copy.deepcopy(BASE)
    config["grpah"] = {}
    config["graph"]["k"].update(min=5, max=4)
    with pytest.raises(BPUInputError, match="'grpah' was unexpected"):
        _validated(config)
    del config["grpah"]
    with pytest.raises(BPUInputError, match=r"'graph.k.min' \(5\) and 'graph.k.max' \(4\)"):
        _validated(config)


def test_command_line_strings_are_coerced():
    config = copy.deepcopy(BASE)
    config["seeds"] = ["0", "1"]                 # what snakemake's --config seeds=[0,1] produces
    config["primary_rois"] = ["EB", '"NO"']
    validate_config(config)
    assert config["seeds"] == [0, 1] and config["primary_rois"] == ["EB", "NO"]


def test_default_model_list_has_controls_and_baselines():
    models = resolved_models(copy.deepcopy(BASE))
    assert models[0] == "cx_bpu" and "mean_predictor" in models and "gru_matched" in models
    # The default synthetic_cx is partially labelled (unsigned under auto, like real exports): no Dale controls.
    assert not any(m.endswith("_dale") for m in models)
    fully_labelled = copy.deepcopy(BASE)
    fully_labelled["synthetic_cx"]["transmitter_coverage"] = 1.0
    assert {"random_dale", "degree_shuffle_dale", "weight_shuffle_dale"} <= set(resolved_models(fully_labelled))


def test_schema_model_names_are_the_package_model_names():
    schema = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())
    assert set(schema["$defs"]["model_name"]["enum"]) == set(MODEL_NAMES)


# --- experiments ---------------------------------------------------------------------------------

def _with_experiments(*experiments: dict) -> dict:
    config = copy.deepcopy(BASE)
    config["experiments"] = list(experiments)
    return config


def test_no_experiments_means_one_named_after_substrate_task_and_mode():
    experiments = _validated(copy.deepcopy(BASE))
    assert list(experiments) == ["synthetic_cx_cx_polar_bump_frozen"]
    experiment = experiments["synthetic_cx_cx_polar_bump_frozen"]
    assert experiment.substrate == "synthetic_cx" and experiment.mode == "frozen"


@pytest.mark.parametrize("experiment, expected", [
    ({"name": "x", "connectome": "hemibrain_xx"}, "experiment 'x': config key 'connectome' has value 'hemibrain_xx'"),
    ({"name": "x", "task": {"name": "odour"}}, "experiment 'x': config key 'task.name' has value 'odour'"),
    ({"name": "x", "models": ["cx_bpu", "lstm"]}, "experiment 'x': config key 'models' has value"),
    ({"name": "x", "training": {"epochz": 3}}, "experiment 'x': config key 'training': Additional properties are "
                                               "not allowed ('epochz' was unexpected)"),
    ({"name": "x", "resources_dir": "/tmp"}, "experiment 'x': config key 'resources_dir' is shared by every experiment"),
    ({"name": "x", "training": {"threads": 4}}, "experiment 'x': config key 'training.threads' is an execution setting"),
    ({"name": "x-y"}, "experiment name 'x-y': expected a letter"),
    ({"name": "x", "task": {"train": {"T": 30}}}, "experiment 'x': config keys 'task.train.T' and 'task.val.T'"),
    ({"name": "x", "connectome": "local", "local_name": "tasks", "local_exports": str(REPO / "tests")},
     "does not contain neurons.csv"),
    ({"name": "x", "training": {"plasticity": {"rule": "modulated_depression"},
                                "learning_rules": {"arms": ["bptt", "fa"]}}},
     "experiment 'x': config keys 'training.learning_rules.arms' (fa) and 'training.plasticity.rule' "
     "(modulated_depression)"),
])
def test_each_experiment_is_validated_with_its_name_and_key(experiment, expected):
    with pytest.raises(BPUInputError) as err:
        _validated(_with_experiments({"name": "fine"}, experiment))
    assert expected in str(err.value)
    assert "'fine'" not in str(err.value)


def test_duplicate_experiment_names_are_refused():
    with pytest.raises(BPUInputError, match="experiment name 'a' is used twice"):
        _validated(_with_experiments({"name": "a"}, {"name": "a", "seeds": [4]}))


def test_shared_artifacts_get_one_identifier_and_changed_ones_another():
    experiments = _validated(_with_experiments(
        {"name": "base"}, {"name": "longer", "training": {"epochs": 99}},
        {"name": "observed", "training": {"train_recurrent": "observed"}},
        {"name": "cartesian", "task": {"name": "cartesian"}},
        {"name": "signed", "graph": {"signed_policy": "force_signed"}}))
    base = experiments["base"]
    assert experiments["longer"].substrate == base.substrate == "synthetic_cx"
    assert experiments["longer"].task_variant == base.task_variant
    assert experiments["longer"].training != base.training          # epochs differ: separate job directories
    assert experiments["observed"].training.startswith("observed-")
    assert experiments["cartesian"].task_variant.startswith("cartesian-")
    assert experiments["signed"].substrate.startswith("synthetic_cx-")   # its own graph cache
    assert experiments["signed"].training == base.training
    again = _validated(_with_experiments({"name": "other", "training": {"epochs": 99}}))
    assert again["other"].training == experiments["longer"].training   # same settings, same directory


def test_two_local_exports_may_not_share_a_results_directory(tmp_path: Path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for file in ("neurons.csv", "connections.csv"):
            (tmp_path / name / file).write_text("x\n")
    with pytest.raises(BPUInputError, match="both write results/mine/"):
        _validated(_with_experiments(
            {"name": "one", "connectome": "local", "local_exports": str(tmp_path / "a"), "local_name": "mine"},
            {"name": "two", "connectome": "local", "local_exports": str(tmp_path / "b"), "local_name": "mine"}))


@pytest.mark.workflow
@pytest.mark.parametrize("args, expected", [
    (["--config", "seeds=[0, -3]"], "config key 'seeds.1' has value -3"),
    (["--config", "connectome=nowhere"], "config key 'connectome' has value 'nowhere'"),
    (["--config", "connectome=local", "local_exports=/nonexistent"], "does not contain neurons.csv"),
    (["--config", "graph={rho_target: 2}"], "config key 'graph.rho_target' has value 2; allowed: a number <= 1"),
    (["--config", "experiments=[{name: pools}]"], "experiment name(s) pools are also names of rules"),
    (["--config", "experiments=[{name: a, training: {epochz: 1}}]"], "experiment 'a': config key 'training'"),
])
def test_snakemake_stops_before_any_job(workdir: Path, args, expected):
    proc = run_snakemake(workdir, *args, check=False)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


@pytest.fixture(scope="module")
def command_line_plan(tmp_path_factory) -> str:
    """One dry run of the tiny config with a seed list and the short form of the task given on the command line."""
    workdir = tmp_path_factory.mktemp("command_line")
    write_config(workdir)
    return run_snakemake(workdir, "-n", "--config", "seeds=[0,1,2]", "task={name: cartesian}").stdout


@pytest.mark.workflow
def test_command_line_seed_list_is_accepted(command_line_plan: str):
    assert "/seed2/" in command_line_plan


@pytest.mark.workflow
def test_short_form_selects_the_task_of_the_one_experiment(command_line_plan: str):
    assert "results/experiments/synthetic_cx_cartesian_frozen/summary.md" in command_line_plan
    assert "results/tasks/cartesian-" in command_line_plan


@pytest.mark.parametrize("task, message", [
    ({"associative": {"per_episode": 70}}, r"task\.associative\.per_episode is 70; expected an integer between 1 and "
                                           r"task\.associative\.odours \(64\)"),
    ({"associative": {"reversals": 7}}, r"task\.associative\.reversals is 7; expected an integer between 1 and "
                                        r"task\.associative\.per_episode \(6\)"),
    ({"associative": {"sparsity": 0}}, r"task\.associative\.sparsity"),
    ({"associative": {"sparsity": 1.5}}, r"task\.associative\.sparsity"),
    ({"landmark": {"visible_prob": 1.5}}, r"task\.landmark\.visible_prob"),
    ({"landmark": {"displacement_scale": -1}}, r"task\.landmark\.displacement_scale"),
    ({"optic_flow": {"hex_rings": 0}}, r"task\.optic_flow\.hex_rings is 0; .*lattice too small for the readout"),
    ({"optic_flow": {"frames": 1}}, r"task\.optic_flow\.frames is 1; expected an integer >= 2"),
    ({"optic_flow": {"contrast_jitter": 1.5}}, r"task\.optic_flow\.contrast_jitter is 1\.5"),
    ({"optic_flow": {"preset": "hard", "test_presets": ["easy"]}},
     r"task\.optic_flow\.test_presets is \['easy'\]; expected it to include task\.optic_flow\.preset \('hard'\)"),
    ({"optic_flow": {"texture": "marble"}},
     r"config key 'task\.optic_flow\.texture' has value 'marble'; allowed: one of 'gratings'"),
    ({"optic_flow": {"test_presets": ["medium", "extreme"]}},
     r"config key 'task\.optic_flow\.test_presets\.1' has value 'extreme'; allowed: one of 'easy', 'medium', 'hard'"),
    ({"optic_flow": {"hex_ring": 4}}, r"config key 'task\.optic_flow': Additional properties are not allowed"),
])
def test_unsatisfiable_episode_specs_stop_before_any_job(task, message):
    """Each family's knobs are checked with the rest of the config, naming the experiment and the key."""
    name = {"associative": "mb_associative", "landmark": "cx_landmark_bump", "optic_flow": "optic_flow"}[next(iter(task))]
    config = copy.deepcopy(BASE)
    config["experiments"] = [{"name": "family", "task": {"name": name, **task}}]
    with pytest.raises(BPUInputError, match=rf"experiment 'family'.*{message}"):
        _validated(config)


def test_optic_substrate_lattice_must_match_the_eye_with_a_one_to_one_input_map():
    config = copy.deepcopy(BASE)
    config["experiments"] = [{"name": "eye", "connectome": "synthetic_optic", "synthetic_optic": {"hex_rings": 3},
                              "task": {"name": "optic_flow"}, "training": {"input_init": "one_to_one"}}]
    with pytest.raises(BPUInputError, match=r"experiment 'eye'.*'synthetic_optic\.hex_rings' \(3\) and "
                                            r"'task\.optic_flow\.hex_rings' \(4\) must be equal"):
        _validated(config)
    config["experiments"][0]["training"] = {"input_init": "uniform"}    # a random map has no lattice to match
    _validated(config)
