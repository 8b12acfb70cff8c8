"""Config validation: bad values stop snakemake before any job, naming key, value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from connectome_bpu.config import resolved_models, validate_config
from connectome_bpu.errors import BPUInputError
from conftest import REPO, run_snakemake

BASE = yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("key_path, value, expected", [
    (("graph", "rho_target"), -0.5, "config key 'graph.rho_target' has value -0.5; allowed: a number > 0"),
    (("graph", "signed_policy"), "maybe", "config key 'graph.signed_policy' has value 'maybe'; allowed: one of 'auto'"),
    (("graph", "whole_brain_pool_fraction"), 0.7, "config key 'graph.whole_brain_pool_fraction' has value 0.7; allowed: a number < 0.5"),
    (("training", "batch_size"), 0, "config key 'training.batch_size' has value 0; allowed: a number >= 1"),
    (("training", "device"), "gpu", "config key 'training.device' has value 'gpu'; allowed: one of 'auto', 'cuda', 'cpu'"),
    (("task", "heading_bins"), 2, "config key 'task.heading_bins' has value 2; allowed: a number >= 4"),
    (("seeds",), "0", "config key 'seeds' has value '0'; allowed: a value of type array"),
    (("synthetic_cx", "copies"), 1.5, "config key 'synthetic_cx.copies' has value 1.5; allowed: a value of type integer"),
])
def test_schema_errors_name_key_value_and_allowed(key_path, value, expected):
    config = copy.deepcopy(BASE)
    node = config
    for key in key_path[:-1]:
        node = node[key]
    node[key_path[-1]] = value
    with pytest.raises(BPUInputError) as err:
        validate_config(config)
    assert expected in str(err.value)


def test_unknown_key_and_cross_key_rules():
    config = copy.deepcopy(BASE)
    config["grpah"] = {}
    config["graph"]["k"].update(min=5, max=4)
    with pytest.raises(BPUInputError, match="'grpah' was unexpected"):
        validate_config(config)
    del config["grpah"]
    with pytest.raises(BPUInputError, match=r"'graph.k.min' \(5\) and 'graph.k.max' \(4\)"):
        validate_config(config)


def test_command_line_strings_are_coerced():
    config = copy.deepcopy(BASE)
    config["seeds"] = ["0", "1"]                 # what snakemake's --config seeds=[0,1] produces
    config["primary_rois"] = ["EB", '"NO"']
    validate_config(config)
    assert config["seeds"] == [0, 1] and config["primary_rois"] == ["EB", "NO"]


def test_default_model_list_has_controls_and_baselines():
    models = resolved_models(copy.deepcopy(BASE))
    assert models[0] == "cx_bpu" and "mean_predictor" in models and "gru_matched" in models
    assert {"random_dale", "degree_shuffle_dale", "weight_shuffle_dale"} <= set(models)


@pytest.mark.workflow
@pytest.mark.parametrize("args, expected", [
    (["--config", "seeds=[0, -3]"], "config key 'seeds.1' has value -3"),
    (["--config", "connectome=nowhere"], "config key 'connectome' has value 'nowhere'"),
    (["--config", "connectome=local", "local_exports=/nonexistent"], "does not contain neurons.csv"),
])
def test_snakemake_stops_before_any_job(workdir: Path, args, expected):
    proc = run_snakemake(workdir, *args, check=False)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


@pytest.mark.workflow
def test_command_line_seed_list_is_accepted(workdir: Path):
    proc = run_snakemake(workdir, "-n", "--config", "seeds=[0,1,2]")
    assert "seed2" in proc.stdout
