"""The missing-evidence checklist: every DONE is a computed check that can fail, and every TODO says what is missing.

An item is DONE only when every training job it needs finished with finite values of its primary metric
at the evaluation split, every control matrix of every seed exists, its run manifest's checksums match the
files on disk, and the manifest was written under the config the plan runs now (so a results directory
copied from another config is not taken for this one). Staleness against code and parameters is
Snakemake's job: the report that prints this checklist is rebuilt whenever an input is (docs/evidence_planning.md).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .provenance import sha256_file

DONE, TODO = "DONE", "TODO"


@dataclass
class CheckItem:
    """One checklist line: what it covers, its priority, and every problem found (none = DONE)."""

    label: str
    priority: str
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return TODO if self.problems else DONE

    def line(self) -> str:
        head = f"- **{self.status}** ({self.priority}) {self.label}"
        shown = self.problems[:8]
        more = [f"... and {len(self.problems) - len(shown)} more"] if len(self.problems) > len(shown) else []
        return "\n".join([head, *(f"  - {problem}" for problem in shown + more)])


def _differing_keys(found: Any, expected: Any, prefix: str = "") -> list[str]:
    if isinstance(found, Mapping) and isinstance(expected, Mapping):
        keys = sorted(set(found) | set(expected))
        return [k for key in keys for k in _differing_keys(found.get(key), expected.get(key), f"{prefix}{key}.")]
    return [] if found == expected else [prefix.rstrip(".")]


def manifest_problems(path: str | Path, expected_config: Mapping[str, Any] | None = None) -> list[str]:
    """Why a run manifest does not vouch for its files: missing, unreadable, another config, or a checksum
    or size that no longer matches the file on disk."""
    path = Path(path)
    if not path.is_file():
        return [f"{path}: run manifest missing"]
    try:
        record = json.loads(path.read_text())
        files = record["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"{path}: unreadable run manifest ({error})"]
    problems = []
    if expected_config is not None:
        differing = _differing_keys(json.loads(json.dumps(record.get("config"))), json.loads(json.dumps(expected_config)))
        if differing:
            problems.append(f"{path}: written under a different config (keys differ: {', '.join(differing[:6])}"
                            f"{' ...' if len(differing) > 6 else ''}); results directory from another config")
    for entry in files:
        target = Path(entry["path"])
        if not target.is_file():
            problems.append(f"{path}: listed file {target} is missing")
        elif target.stat().st_size != entry["bytes"] or sha256_file(target) != entry["sha256"]:
            problems.append(f"{path}: checksum of {target} does not match the manifest")
    return problems


def _finite_metric(path: Path, metric: str, split: str, T: int, n_train: int) -> str | None:
    """None when the job's evaluation row has a finite value of ``metric``, else what is wrong."""
    if not path.is_file():
        return f"{path}: missing (the job has not run)"
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError) as error:
        return f"{path}: unreadable ({error})"
    if metric not in table:
        return f"{path}: no column {metric}"
    row = table[(table["split"] == split) & (table["T"] == T) & (table["n_train"] == n_train)]
    if row.empty:
        return f"{path}: no row for split {split} at T={T}, n_train={n_train}"
    values = row[metric].astype(float)
    if not all(math.isfinite(v) for v in values):
        return f"{path}: {metric} is not finite ({values.tolist()})"
    return None


def item_check(item: Mapping[str, Any], config: Mapping[str, Any] | None) -> CheckItem:
    """An experiment of the plan: every model x seed job, every control, its sweep report and its manifest."""
    check = CheckItem(f"`{item['experiment']}` ({item['task']} on {item['connectome']}, {len(item['models'])} models "
                      f"x {len(item['seeds'])} seeds): {item['claim']}", item["priority"])
    for job in item["jobs"]:
        problem = _finite_metric(Path(job["metrics"]), item["metric"], item["split"], item["train_T"], job["n_train"])
        if problem:
            check.problems.append(f"{job['model']} seed {job['seed']}: {problem}")
    check.problems += [f"control matrix {path} missing" for path in item["controls"] if not Path(path).is_file()]
    for name in ("sweep/sweep_report.md", "summary.md"):
        if not (Path(item["dir"]) / name).is_file():
            check.problems.append(f"{Path(item['dir']) / name} missing")
    manifest = Path(item["dir"]) / "run_manifest.json"
    check.problems += manifest_problems(manifest, config)
    if manifest.is_file():
        newer = [job["metrics"] for job in item["jobs"]
                 if Path(job["metrics"]).is_file() and Path(job["metrics"]).stat().st_mtime > manifest.stat().st_mtime]
        check.problems += [f"{path}: written after {manifest} (the experiment's results are stale; rerun the "
                           "workflow)" for path in newer]
    return check


def selector_check(plan: Mapping[str, Any]) -> CheckItem:
    check = CheckItem("selector decisions (JSON and Markdown per task, with the prepared graph's metadata)", "required")
    for task, files in plan["selectors"].items():
        for kind in ("json", "md"):
            if not Path(files[kind]).is_file():
                check.problems.append(f"{files[kind]} missing")
        if Path(files["json"]).is_file():
            picked = json.loads(Path(files["json"]).read_text())["selected"]["connectome"]
            if picked != files["connectome"]:
                check.problems.append(f"{files['json']}: selects {picked}, but the plan ran {files['connectome']}")
    return check


def graph_check(plan: Mapping[str, Any]) -> CheckItem:
    check = CheckItem("graph metadata of every substrate of the plan", "required")
    for substrate, directory in plan["substrates"].items():
        path = Path(directory) / "graph_metadata.json"
        if not path.is_file():
            check.problems.append(f"{path} missing")
        elif not json.loads(path.read_text()).get("N"):
            check.problems.append(f"{path}: no neurons")
    return check


def transfer_check(plan: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]]) -> CheckItem:
    check = CheckItem("cross-region match/mismatch, paired over every seed", plan["transfer_priority"])
    for family in plan["transfer"]:
        for path in family["jobs"]:
            if not Path(path).is_file():
                check.problems.append(f"{family['family']}: {path} missing (the job has not run)")
        for name in (family["mismatched"], family["size_matched"]):
            if name:
                manifest = Path(plan["items"][0]["dir"]).parent / name / "run_manifest.json"
                check.problems += manifest_problems(manifest, configs.get(name))
    advantage = Path(plan["cross_region_dir"]) / "cross_region_advantage.csv"
    if not advantage.is_file():
        check.problems.append(f"{advantage} missing")
        return check
    table = pd.read_csv(advantage)
    for family in plan["transfer"]:
        rows = table[table["family"] == family["family"]]
        if rows.empty:
            check.problems.append(f"{advantage}: no row for family {family['family']}")
        for row in rows.itertuples():
            if row.n_pairs != len(plan["seeds"]):
                check.problems.append(f"{advantage}: {family['family']} {row.comparison} paired {row.n_pairs} of "
                                      f"{len(plan['seeds'])} seeds")
    return check


def low_power_check(plan: Mapping[str, Any], bitwidths: list[int]) -> CheckItem:
    check = CheckItem("low-power proxy (footprint and operations per substrate and bitwidth, measured CPU latency)",
                      "required")
    files = plan["low_power"]
    for path in files.values():
        if not Path(path).is_file():
            check.problems.append(f"{path} missing")
    if check.problems:
        return check
    summary = pd.read_csv(files["low_power_proxy_summary.csv"])
    for substrate in plan["substrates"]:
        for bits in bitwidths:
            if summary[(summary["substrate"] == substrate) & (summary["bitwidth"] == bits)].empty:
                check.problems.append(f"{files['low_power_proxy_summary.csv']}: no row for {substrate} at {bits} bits")
    measured = pd.read_csv(files["measured_latency.csv"])
    bad = measured[~measured["ms_per_sequence"].astype(float).map(math.isfinite)]
    check.problems += [f"measured latency of {row.substrate} is not finite" for row in bad.itertuples()]
    return check


def evidence_checklist(plan: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]],
                       bitwidths: list[int]) -> list[CheckItem]:
    """Every line of the checklist, in plan order."""
    items = [selector_check(plan), graph_check(plan)]
    items += [item_check(item, configs.get(item["experiment"])) for item in plan["items"]]
    if plan["transfer"]:
        items.append(transfer_check(plan, configs))
    items.append(low_power_check(plan, bitwidths))
    return items


def checklist_record(checklist: list[CheckItem], plan: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]],
                     bitwidths: list[int]) -> dict[str, Any]:
    """``evidence_checklist.json``: the lines, and what they were checked against, so they can be re-checked."""
    return {"items": [{"label": c.label, "priority": c.priority, "status": c.status, "problems": c.problems}
                      for c in checklist],
            "plan": plan, "configs": configs, "bitwidths": bitwidths}


def recheck(record_path: str | Path) -> list[CheckItem]:
    """The checklist of a written report, evaluated again on the results tree as it is now."""
    record = json.loads(Path(record_path).read_text())
    return evidence_checklist(record["plan"], record["configs"], record["bitwidths"])


if __name__ == "__main__":
    import sys

    items = recheck(sys.argv[1] if len(sys.argv) > 1 else "results/evidence/evidence_checklist.json")
    print("\n".join(item.line() for item in items))
    sys.exit(1 if any(item.status == TODO for item in items) else 0)
