"""The evidence plan through the real workflow: the dry run is the plan, the run builds a checked report, a
deleted seed is exactly one TODO and exactly the jobs to redo, and the HTML report renders its figures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chromium import open_page
from conftest import REPO, job_counts, run_snakemake

pytestmark = pytest.mark.workflow

SMALL = str(REPO / "configs" / "evidence_small.yaml")
FULL = str(REPO / "configs" / "evidence.yaml")
# The CI-sized cut of configs/evidence_small.yaml: two claim elements, two seeds, no GRUs and no cross-region
# experiments (their plan is unit-tested; tests/test_families_workflow.py runs cross-region transfer). The full
# small preset is measured in docs/evidence_planning.md.
TRIM = {"evidence": {"seeds": [0, 1], "items": None, "cross_region": None},
        "training": {"include_gru": False}, "seeds": [0, 1]}


def _trimmed_config(workdir: Path) -> str:
    config = yaml.safe_load(Path(SMALL).read_text())
    items = [item for item in config["evidence"]["items"]
             if item["name"] in ("cx_path_observed", "mb_associative_observed")]
    config["evidence"].update(TRIM["evidence"], items=items)
    config["training"].update(TRIM["training"])
    config["seeds"] = TRIM["seeds"]
    path = workdir / "evidence_ci.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


# A line of the plan overview printed at start-up: experiment, priority, substrate, models, jobs on disk / planned.
OVERVIEW_LINE = re.compile(r"^  (\w+_n\d+seed)\s+(?:required|recommended)\s+\S+\s+\d+\s+(\d+/\d+)$", re.M)


def _fresh(tmp_path: Path) -> Path:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def test_full_plan_dry_run_needs_no_token_lists_every_job_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUPRINT_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("NEUPRINT_TOKEN", raising=False)
    workdir = _fresh(tmp_path)
    proc = run_snakemake(workdir, "evidence", "-n", "--configfile", FULL)
    jobs = job_counts(proc.stdout)
    # 5 seeds x (CX path 5 models + landmark 5 + MB 4 + optic 5 + 3 baselines each) + cross-region 4 x 2 x 5
    assert jobs["train_model"] == 5 * (8 + 8 + 7 + 8) + 4 * 2 * 5
    assert jobs["neuprint_download"] == 2 and jobs["flywire_file"] == 2
    assert jobs["select_connectome"] == 4 and jobs["low_power_proxy"] == 1 and jobs["evidence_report"] == 1
    overview = proc.stderr + proc.stdout
    assert "Evidence plan: 4 claim elements" in overview and "mb_associative_observed_n5seed" in overview
    assert "hemibrain_mushroom_body" in overview and "flywire_optic_lobe" in overview
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()
    # Running it without a token stops before any job, naming where the token goes.
    proc = run_snakemake(workdir, "evidence", "--configfile", FULL, check=False)
    assert proc.returncode != 0 and "NEUPRINT_APPLICATION_CREDENTIALS" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


def test_evidence_target_without_a_plan_says_which_config_has_one(workdir: Path):
    proc = run_snakemake(workdir, "evidence", "-n", check=False)
    assert proc.returncode != 0 and "configs/evidence.yaml" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The CI-sized plan, built end to end once for the tests below."""
    workdir = _fresh(tmp_path_factory.mktemp("evidence"))
    config = _trimmed_config(workdir)
    # the run logs its plan (a dry run's job stats) before the first job
    plan = job_counts(run_snakemake(workdir, "evidence", "--configfile", config, timeout=1800).stderr)
    assert plan["train_model"] == 2 * (6 + 5) and plan["select_connectome"] == 2, plan
    return workdir, config


def _checklist(workdir: Path) -> list[dict]:
    return json.loads((workdir / "results/evidence/evidence_checklist.json").read_text())["items"]


def test_the_built_plan_is_done_and_every_advantage_statement_cites_its_numbers(built):
    workdir, config = built
    checklist = _checklist(workdir)
    assert [c["status"] for c in checklist] == ["DONE"] * len(checklist) and len(checklist) == 5
    report = (workdir / "results/evidence/evidence_report.md").read_text()
    assert "TODO" not in report and report.count("**DONE**") == 5
    statements = re.findall(r"^- vs `(\w+)`: (.*)$", report, flags=re.M)
    assert statements and all(re.search(r"\[[-+0-9.e]+, [-+0-9.e]+\] over 2 seeds, Holm-adjusted t p = [0-9.na/]+, exact sign-flip p = ",
                                        text) for _, text in statements)
    assert "SYNTHETIC" in report or "Synthetic substrates" in report
    selector = json.loads((workdir / "results/evidence/selectors/mb_associative.json").read_text())
    assert selector["selected"]["connectome"] == "synthetic_mb" and selector["expected_k"] >= 3
    assert any(reason.startswith("pool counts:") for reason in selector["mapping"]["reasons"])
    # Nothing changed: nothing to do.
    assert "Nothing to be done" in run_snakemake(workdir, "evidence", "-n", "--configfile", config).stdout


def test_plan_export_states_come_from_snakemake_and_price_from_benchmarks(built):
    workdir, config = built
    run_snakemake(workdir, "evidence_plan", "--configfile", config)
    record = json.loads((workdir / "results/evidence/plan.json").read_text())
    assert record["claims"] and all(c["steps"]["missing"] == 0 and c["steps"]["stale"] == 0
                                    for c in record["claims"])
    assert record["total_estimated_device_hours"] == 0
    assert {job["source"] for job in record["jobs"]} == {"measured"}
    assert "Nothing is pending" in (workdir / "results/evidence/plan.md").read_text()


def test_html_report_packages_the_evidence_and_its_figures_render(built, tmp_path):
    workdir, config = built
    html = workdir / "evidence.html"
    run_snakemake(workdir, "evidence", "--configfile", config, "--report", str(html))
    with open_page(html, tmp_path / "profile") as page:
        assert page.wait_for("document.body && document.body.innerText.includes('Evidence')")
        names = page.evaluate("Object.keys(window.results).map(k => k.split('/').pop()).join(' ')").split()
        assert {"evidence_report.md", "connectome_advantage.png", "sweep_report.md", "cx_polar_bump.md"} <= set(names)
        # Open the Evidence category and the figure as a user would; the browser must decode it.
        page.evaluate(CLICK_JS.format(selector="a", text="Evidence"))
        assert page.wait_for("document.body.innerText.includes('connectome_advantage.png')")
        page.evaluate("Array.from(document.querySelectorAll('tr')).find(r => r.innerText.includes("
                      "'connectome_advantage.png')).querySelector('a[iconname=eye]').click()")
        shown = page.wait_for(SHOWN_PNG_JS)
        assert shown and shown[0] > 300 and shown[1] > 300, shown
        # Every figure packaged in the report decodes to an image of a readable size.
        decoded = page.evaluate(DECODE_PNGS_JS)
        assert len(decoded) >= 8 and all(w > 300 and h > 200 for w, h in decoded.values()), decoded



def test_deleting_one_seed_is_exactly_one_todo_and_exactly_its_jobs(built):
    workdir, config = built
    victim = next(workdir.glob("results/synthetic_mb/runs/mb_associative*/observed-*/random_sparse/seed1/n*/metrics.csv"))
    victim.unlink()
    proc = run_snakemake(workdir, "evidence", "-n", "--configfile", config)
    jobs = job_counts(proc.stdout)
    assert jobs["train_model"] == 1 and f"output: {victim.relative_to(workdir).parent}" in proc.stdout
    # everything else pending is downstream of that one job
    assert set(jobs) <= {"train_model", "aggregate", "summary", "figure", "sweep_statistics", "control_validation",
                         "manifest", "low_power_proxy", "evidence_report", "evidence"}
    on_disk = dict(OVERVIEW_LINE.findall(proc.stdout + proc.stderr))
    assert on_disk["mb_associative_observed_n2seed"] == "9/10" and on_disk["cx_path_observed_n2seed"] == "12/12"
    # The report's checklist, re-evaluated on the tree as it is now, marks exactly that item TODO and names it.
    recheck = subprocess.run([sys.executable, "-m", "connectome_bpu.evidence_checks",
                              "results/evidence/evidence_checklist.json"], cwd=workdir, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert recheck.returncode == 1 and recheck.stdout.count("**TODO**") == 1
    todo = recheck.stdout[recheck.stdout.index("**TODO**"):]
    assert "mb_associative_observed_n2seed" in todo.splitlines()[0] and str(victim.relative_to(workdir)) in todo
    # The plan export says the same from Snakemake's view, and prices the job from its own earlier benchmark.
    run_snakemake(workdir, "evidence_plan", "--configfile", config)
    record = json.loads((workdir / "results/evidence/plan.json").read_text())
    mb = next(c for c in record["claims"] if c["claim"] == "mb_associative_observed_n2seed")
    assert mb["pending_training_jobs"] == 1 and mb["steps"]["missing"] >= 1
    assert mb["cost_sources"] == ["measured"] and mb["estimated_device_hours"] > 0


CLICK_JS = "Array.from(document.querySelectorAll('{selector}')).find(e => e.innerText.trim() === '{text}').click()"
SHOWN_PNG_JS = ("(() => { const i = Array.from(document.images).find(i => i.src.startsWith('data:image/png')); "
                "return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null; })()")
DECODE_PNGS_JS = """
(async () => {
  const out = {};
  for (const [path, result] of Object.entries(window.results)) {
    if (!path.endsWith('.png')) continue;
    const img = new Image();
    img.src = result.data_uri;
    await img.decode();
    out[path] = [img.naturalWidth, img.naturalHeight];
  }
  return out;
})()
"""
