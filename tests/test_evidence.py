"""The evidence plan (selector-driven experiments), its checklist and its plan export, without Snakemake."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, deep_update
from connectome_bpu.config import validate_config
from connectome_bpu.errors import BPUInputError
from connectome_bpu.evidence import resolve_evidence
from connectome_bpu.evidence_checks import evidence_checklist, item_check, manifest_problems, transfer_check
from connectome_bpu.evidence_plan import (file_state, parse_summary, plan_record, plan_steps, state_fingerprint,
                                          training_costs)
from connectome_bpu.experiments import resolve_experiments
from connectome_bpu.provenance import build_manifest


def preset(name: str, **extra) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    deep_update(config, yaml.safe_load((REPO / "configs" / name).read_text()))
    return validate_config(deep_update(config, extra))


def test_small_preset_runs_each_item_on_the_selected_embedded_substrate_with_its_matched_controls():
    plan, planned = resolve_evidence(preset("evidence_small.yaml"))
    experiments = resolve_experiments(planned)
    picked = {item.name: (item.connectome, experiments[item.experiment].models[:5]) for item in plan.items}
    assert picked["cx_path_observed"] == ("synthetic_cx", ("cx_bpu", "random", "degree_shuffle", "weight_shuffle",
                                                           "no_recurrence"))
    assert picked["mb_associative_observed"][0] == "synthetic_mb"
    assert picked["optic_flow_observed"][0] == "synthetic_optic"
    # Names carry the real seed count; every experiment of the plan trains on the plan's seeds.
    assert {item.experiment for item in plan.items} == {f"{n}_n3seed" for n in (
        "cx_path_observed", "cx_landmark_observed", "mb_associative_observed", "optic_flow_observed")}
    assert all(experiments[name].seeds == (0, 1, 2) for name in plan.experiments)
    # Cross-region: each family on the other family's substrate, plain and size-matched, one model.
    family = {f.family: f for f in plan.transfer}
    assert family["path"].matched == "cx_path_observed_n3seed"
    mismatched = experiments[family["path"].mismatched]
    assert mismatched.config["connectome"] == "synthetic_mb" and mismatched.models == ("cx_bpu", "mean_predictor")
    assert experiments[family["associative"].size_matched].size_match[1] == "synthetic_mb"


def test_seed_count_changes_the_names_and_the_allow_list_changes_the_substrate():
    plan, _ = resolve_evidence(preset("evidence_small.yaml", evidence={"seeds": [0, 1, 2, 3, 4]}))
    assert plan.items[0].experiment == "cx_path_observed_n5seed"
    plan, planned = resolve_evidence(preset("evidence.yaml"))
    assert [item.connectome for item in plan.items] == ["hemibrain_cx", "hemibrain_cx", "hemibrain_mushroom_body",
                                                       "flywire_optic_lobe"]
    mb = resolve_experiments(planned)["mb_associative_observed_n5seed"]
    assert mb.models[:4] == ("connectome_bpu", "random_sparse", "degree_shuffle", "weight_shuffle")


@pytest.mark.parametrize("change, message", [
    ({"available": ["hemibrain_cx", "not_a_brain"]}, "not_a_brain"),
    ({"available": ["hemibrain_mushroom_body"]}, "not on evidence.available"),
])
def test_bad_allow_lists_stop_with_one_error_naming_them(change, message):
    config = preset("evidence_small.yaml")
    config["evidence"].update(change)
    with pytest.raises(BPUInputError, match=message):
        resolve_evidence(config)


def test_an_item_may_not_choose_what_the_plan_decides_and_cross_region_must_name_items():
    config = preset("evidence_small.yaml")
    config["evidence"]["items"][0]["config"]["connectome"] = "synthetic_mb"
    with pytest.raises(BPUInputError, match="config sets connectome, which the evidence plan decides"):
        resolve_evidence(config)
    config = preset("evidence_small.yaml")
    config["evidence"]["cross_region"]["path"] = "nothing"
    with pytest.raises(BPUInputError, match="evidence.cross_region.path is 'nothing'"):
        resolve_evidence(config)


def test_an_unknown_task_is_refused_by_the_schema():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    deep_update(config, yaml.safe_load((REPO / "configs" / "evidence_small.yaml").read_text()))
    config["evidence"]["items"][0]["task"] = "juggling"
    with pytest.raises(BPUInputError, match="evidence.items.0.task"):
        validate_config(config)


# --- checklist -----------------------------------------------------------------------------------
def _item(tmp_path: Path, seeds=(0, 1)) -> tuple[dict, dict]:
    """A plan item with finished jobs, controls, sweep report, summary and a manifest over its files."""
    config = {"training": {"epochs": 2}}
    exp_dir = tmp_path / "results/experiments/demo_n2seed"
    (exp_dir / "sweep").mkdir(parents=True)
    (exp_dir / "sweep/sweep_report.md").write_text("ok\n")
    (exp_dir / "summary.md").write_text("ok\n")
    jobs, controls = [], []
    for model in ("cx_bpu", "random"):
        for seed in seeds:
            job = tmp_path / f"results/sub/runs/t/m/{model}/seed{seed}/n8/metrics.csv"
            job.parent.mkdir(parents=True)
            pd.DataFrame({"model": [model], "seed": [seed], "split": ["test"], "T": [10], "n_train": [8],
                          "heading_bump_angular_error": [0.5 + seed]}).to_csv(job, index=False)
            jobs.append({"model": model, "seed": seed, "n_train": 8, "metrics": str(job)})
    for seed in seeds:
        control = tmp_path / f"results/sub/controls/random/seed{seed}.npz"
        control.parent.mkdir(parents=True, exist_ok=True)
        np.savez(control, x=np.arange(3))
        controls.append(str(control))
    manifest = build_manifest([j["metrics"] for j in jobs] + controls, config=config)
    (exp_dir / "run_manifest.json").write_text(json.dumps(manifest))
    item = {"experiment": "demo_n2seed", "task": "cx_polar_bump", "connectome": "synthetic_cx", "claim": "demo",
            "priority": "required", "models": ["cx_bpu", "random"], "seeds": list(seeds), "split": "test",
            "train_T": 10, "metric": "heading_bump_angular_error", "jobs": jobs, "controls": controls,
            "dir": str(exp_dir)}
    return item, config


def test_a_complete_item_is_done_and_each_defect_turns_it_to_todo_naming_the_problem(tmp_path):
    item, config = _item(tmp_path)
    assert item_check(item, config).status == "DONE"
    # One seed's metrics deleted: TODO naming exactly that job.
    Path(item["jobs"][1]["metrics"]).unlink()
    check = item_check(item, config)
    assert check.status == "TODO" and any("cx_bpu seed 1" in p and "has not run" in p for p in check.problems)


def test_non_finite_metric_tampered_file_and_foreign_config_are_todo(tmp_path):
    item, config = _item(tmp_path)
    frame = pd.read_csv(item["jobs"][0]["metrics"])
    frame["heading_bump_angular_error"] = np.nan
    frame.to_csv(item["jobs"][0]["metrics"], index=False)
    problems = item_check(item, config).problems
    assert any("is not finite" in p for p in problems)
    assert any("checksum of" in p and "does not match" in p for p in problems)
    other = copy.deepcopy(config)
    other["training"]["epochs"] = 3
    assert any("results directory from another config" in p and "training.epochs" in p
               for p in manifest_problems(Path(item["dir"]) / "run_manifest.json", other))


def test_a_job_rerun_after_the_manifest_is_stale(tmp_path):
    item, config = _item(tmp_path)
    job = Path(item["jobs"][0]["metrics"])
    manifest = Path(item["dir"]) / "run_manifest.json"
    os.utime(job, (manifest.stat().st_mtime + 10, manifest.stat().st_mtime + 10))
    assert any("written after" in p and "stale" in p for p in item_check(item, config).problems)


def test_missing_control_and_manifest_are_named(tmp_path):
    item, config = _item(tmp_path)
    Path(item["controls"][0]).unlink()
    (Path(item["dir"]) / "run_manifest.json").unlink()
    problems = item_check(item, config).problems
    assert any("control matrix" in p and "seed0.npz" in p for p in problems)
    assert any("run manifest missing" in p for p in problems)


def test_checklist_flags_a_selector_file_that_disagrees_with_the_plan(tmp_path):
    item, config = _item(tmp_path)
    selector = tmp_path / "results/evidence/selectors/cx_polar_bump.json"
    selector.parent.mkdir(parents=True)
    selector.write_text(json.dumps({"selected": {"connectome": "hemibrain_cx"}}))
    selector.with_suffix(".md").write_text("x")
    plan = {"items": [item], "transfer": [], "transfer_priority": "required", "seeds": [0, 1],
            "substrates": {}, "low_power": {"low_power_proxy_summary.csv": str(tmp_path / "nope.csv")},
            "selectors": {"cx_polar_bump": {"json": str(selector), "md": str(selector.with_suffix(".md")),
                                            "connectome": "synthetic_cx"}}}
    checklist = evidence_checklist(plan, {"demo_n2seed": config}, [32])
    assert [c.status for c in checklist] == ["TODO", "DONE", "DONE", "TODO"]
    assert "selects hemibrain_cx, but the plan ran synthetic_cx" in checklist[0].problems[0]
    assert "nope.csv missing" in checklist[-1].problems[0]


def test_cross_region_is_done_only_when_every_family_paired_every_seed(tmp_path):
    item, config = _item(tmp_path)
    region = tmp_path / "results/cross_region"
    region.mkdir(parents=True)
    pd.DataFrame({"family": ["path"], "comparison": ["matched - mismatched"], "n_pairs": [1]}).to_csv(
        region / "cross_region_advantage.csv", index=False)
    plan = {"items": [item], "seeds": [0, 1], "transfer_priority": "required", "cross_region_dir": str(region),
            "transfer": [{"family": "path", "matched": item["experiment"], "mismatched": None, "size_matched": None,
                          "jobs": [job["metrics"] for job in item["jobs"] if job["model"] == "cx_bpu"]},
                         {"family": "associative", "matched": item["experiment"], "mismatched": None,
                          "size_matched": None, "jobs": []}]}
    problems = transfer_check(plan, {}).problems
    assert any("paired 1 of 2 seeds" in p for p in problems)
    assert any("no row for family associative" in p for p in problems)


# --- plan export ---------------------------------------------------------------------------------
SUMMARY = """output_file\tdate\trule\tlog-file(s)\tstatus\tplan
R/sub/runs/t/m/cx_bpu/seed0/n8/metrics.csv\t-\ttrain_model\t-\tok\tno update
R/sub/runs/t/m/cx_bpu/seed0/n8/checkpoint.pt\t-\ttrain_model\t-\tok\tno update
R/sub/runs/t/m/cx_bpu/seed1/n8/metrics.csv\t-\ttrain_model\t-\tmissing\tupdate pending
R/sub/runs/t/m/random/seed0/n8/metrics.csv\t-\ttrain_model\t-\tparams changed since last execution\tupdate pending
R/experiments/demo/summary.md\t-\tsummary\t-\tok\tupdate pending
R/sub/graph/graph_metadata.json\t-\tgraph_metadata\t-\tok\tno update
"""


def _export_plan():
    jobs = [{"model": m, "seed": s, "n_train": 8, "metrics": f"R/sub/runs/t/m/{m}/seed{s}/n8/metrics.csv"}
            for m in ("cx_bpu", "random") for s in (0, 1)]
    return {"items": [{"experiment": "demo", "dir": "R/experiments/demo", "jobs": jobs, "substrate": "sub",
                       "connectome": "synthetic_cx", "train_T": 10}],
            "transfer": [], "cross_region_dir": None, "substrates": {"sub": "R/sub/graph"},
            "low_power": {"low_power_proxy_report.md": "R/evidence/low_power_proxy/low_power_proxy_report.md"}}


def test_states_come_from_snakemakes_summary_grouped_into_steps_per_claim_element():
    assert (file_state("missing", "update pending"), file_state("ok", "no update"),
            file_state("ok", "update pending")) == ("missing", "done", "stale")
    steps = plan_steps(parse_summary(SUMMARY), _export_plan())
    by_dir = steps.set_index("directory")
    assert by_dir.loc["R/sub/runs/t/m/cx_bpu/seed0/n8", "state"] == "done"
    assert by_dir.loc["R/sub/runs/t/m/cx_bpu/seed0/n8", "files"] == 2
    assert by_dir.loc["R/sub/runs/t/m/cx_bpu/seed1/n8", "state"] == "missing"
    stale = by_dir.loc["R/sub/runs/t/m/random/seed0/n8"]
    assert stale["state"] == "stale" and stale["reason"] == "params changed since last execution"
    assert set(steps["claim"]) == {"demo", "substrates and controls"}


def test_costs_prefer_measurements_then_siblings_then_the_bench_figure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = _export_plan()
    done = Path("R/sub/runs/t/m/cx_bpu/seed0/n8")
    done.mkdir(parents=True)
    (done / "benchmark.tsv").write_text("s\th:m:s\tmax_rss\n12.0\t0:00:12\t300.5\n")
    graphs = {"sub": {"N": 100, "unsigned_edge_count": 1000, "estimated_K": 3}}
    costs = training_costs(plan, {"demo": 2}, graphs).set_index(["model", "seed"])
    assert costs.loc[("cx_bpu", 0), "source"] == "measured" and costs.loc[("cx_bpu", 0), "seconds"] == 12.0
    assert costs.loc[("cx_bpu", 1), "source"] == "same model, other seeds"
    assert costs.loc[("random", 0), "source"] == "work model fitted to measured jobs"
    # work = epochs x n_train x T x (K E + N); the fitted rate prices a job of equal work at the measured time
    assert costs.loc[("random", 0), "seconds"] == pytest.approx(12.0)
    fresh = training_costs(plan, {"demo": 2}, graphs)
    (done / "benchmark.tsv").unlink()
    fresh = training_costs(plan, {"demo": 2}, graphs)
    assert set(fresh["source"]) == {"bench figure: bench/bench_associative_step.py (2 CPU cores)"}
    record = plan_record(plan, plan_steps(parse_summary(SUMMARY), plan), costs.reset_index())
    demo = next(c for c in record["claims"] if c["claim"] == "demo")
    assert demo["steps"] == {"done": 1, "stale": 2, "missing": 1}
    assert demo["pending_training_jobs"] == 2 and demo["peak_memory_mb"] == pytest.approx(300.5)


def test_state_fingerprint_follows_files_on_disk(tmp_path):
    path = tmp_path / "a.csv"
    before = state_fingerprint([str(path)])
    path.write_text("x")
    assert state_fingerprint([str(path)]) != before
