"""The plan export: per claim element, the jobs it needs, their state in Snakemake's own view, and their cost.

States come from ``snakemake --summary`` run on the ``evidence`` target with the same config (one row per
output file: ``missing``, ``ok``, or why it is out of date; ``plan`` says whether Snakemake would rerun it).
Files are grouped into steps (a rule's outputs in one directory: one training job, one aggregation, ...)
and each step is assigned to the claim element it serves (docs/evidence_planning.md#plan-export).

Cost per training job comes, in order of preference, from
1. the job's own ``benchmark.tsv`` (it ran before and is stale now, or it is done);
2. the median of measured jobs of the same model, substrate, task and training (other seeds), scaled by
   the number of training sequences;
3. a work model fitted to every measured training job of the plan: seconds proportional to
   epochs x training sequences x T x (K x edges + N);
4. the same work model at the rate of the MB-size training-step bench (``bench/bench_associative_step.py``:
   1.0 s per step at 1,277,773 edges, K 3, T 21, batch 64 on 2 CPU cores), when no job has run yet.
Estimates are upper bounds: early stopping can end a job before its last epoch.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import yaml

from .code_deps import workflow_code_hash
from .errors import BPUInputError

# The bench figure of step 4: seconds per (edge x microstep x timestep x sequence) of a training step.
BENCH_STEP_SECONDS = 1.0
BENCH_STEP_WORK = 1_277_773 * 3 * 21 * 64
BENCH_SOURCE = "bench/bench_associative_step.py (2 CPU cores)"
# Sizes of the real substrates, used only to price jobs before their graph is prepared (N, edges).
PUBLISHED_SIZES = {"hemibrain_cx": (7_349, 511_930), "hemibrain_mushroom_body": (11_690, 1_277_773),
                   "flywire_optic_lobe": (96_816, 8_757_188), "flywire_whole": (139_255, 15_100_000)}


def state_fingerprint(paths: Iterable[str]) -> str:
    """A digest of which planned files exist, their mtimes, and the code (see rules/evidence.smk)."""
    digest = hashlib.sha256(workflow_code_hash().encode())
    for path in sorted(set(paths)):
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError:
            stamp = -1
        digest.update(f"{path}\0{stamp}\n".encode())
    return digest.hexdigest()[:16]


def snakemake_summary(snakefile: str, config: Mapping[str, Any], target: str = "evidence") -> pd.DataFrame:
    """Snakemake's per-file view of ``target`` under ``config`` (read only: ``--nolock``, nothing runs)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(json.loads(json.dumps(dict(config))), handle, sort_keys=False)
        config_path = handle.name
    try:
        # The target goes first: --configfile takes every word after it.
        proc = subprocess.run([sys.executable, "-m", "snakemake", target, "--nolock", "--summary", "--cores", "1",
                               "--snakefile", snakefile, "--directory", os.getcwd(), "--configfile", config_path],
                              capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(config_path)
    if proc.returncode != 0:
        raise BPUInputError(f"snakemake --summary {target} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    text = proc.stdout[proc.stdout.index("output_file\t"):] if "output_file\t" in proc.stdout else ""
    if not text:
        raise BPUInputError(f"snakemake --summary {target} printed no table:\n{proc.stdout[-2000:]}")
    return parse_summary(text)


def parse_summary(text: str) -> pd.DataFrame:
    """The ``--summary`` table: output_file, date, rule, log-file(s), status, plan."""
    table = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    missing = {"output_file", "rule", "status", "plan"} - set(table.columns)
    if missing:
        raise BPUInputError(f"snakemake --summary: expected columns {sorted(missing)}; found {list(table.columns)}")
    return table


def file_state(status: str, plan: str) -> str:
    """done / missing / stale of one output file in Snakemake's view."""
    if status == "missing":
        return "missing"
    return "done" if plan == "no update" else "stale"


def _claim_index(plan: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(path prefix, claim element), most specific first: job directories, experiments, then shared steps."""
    index = []
    for item in plan["items"]:
        index += [(str(Path(job["metrics"]).parent) + "/", item["experiment"]) for job in item["jobs"]]
    for family in plan["transfer"]:
        index += [(str(Path(path).parent) + "/", f"cross_region_{family['family']}") for path in family["jobs"]]
    for item in plan["items"]:
        index.append((item["dir"] + "/", item["experiment"]))
    for family in plan["transfer"]:
        for name in (family["mismatched"], family["size_matched"]):
            if name:
                index.append((str(Path(plan["items"][0]["dir"]).parent / name) + "/", f"cross_region_{family['family']}"))
    if plan.get("cross_region_dir"):
        index.append((plan["cross_region_dir"] + "/", "cross_region"))
    evidence_dir = str(Path(plan["low_power"]["low_power_proxy_report.md"]).parent.parent)
    index += [(evidence_dir + "/selectors/", "selectors"), (evidence_dir + "/low_power_proxy/", "low_power_proxy"),
              (evidence_dir + "/", "evidence_report")]
    results = str(Path(evidence_dir).parent)
    index += [(results + "/tasks/", "task splits"), (results + "/", "substrates and controls"),
              ("", "downloads")]
    return index


def claim_of(path: str, index: list[tuple[str, str]]) -> str:
    return next(claim for prefix, claim in index if path.startswith(prefix))


def _reason(group: pd.DataFrame) -> str:
    """Why a step is pending, in Snakemake's words: the files it lacks, else the first stated cause, else that a
    file which is itself fine will be rebuilt because an input is."""
    missing = group[group["state"] == "missing"]
    if len(missing):
        return "no " + ", ".join(Path(path).name for path in missing["output_file"])
    causes = [status for status, state in zip(group["status"], group["state"]) if state == "stale" and status != "ok"]
    if causes:
        return causes[0]
    return "an input is rebuilt first" if (group["state"] == "stale").any() else ""


def plan_steps(summary: pd.DataFrame, plan: Mapping[str, Any]) -> pd.DataFrame:
    """One row per step (a rule's outputs in one directory), with its claim element and state.

    A step is ``missing`` if any of its files is, else ``stale`` if any is out of date, else ``done``;
    ``reason`` keeps Snakemake's own words for the first file that is not done.
    """
    index = _claim_index(plan)
    rows = summary.assign(directory=[str(Path(p).parent) for p in summary["output_file"]],
                          state=[file_state(s, p) for s, p in zip(summary["status"], summary["plan"])])
    steps = []
    for (rule, directory), group in rows.groupby(["rule", "directory"], sort=False):
        states = set(group["state"])
        state = "missing" if "missing" in states else "stale" if "stale" in states else "done"
        steps.append({"claim": claim_of(str(group["output_file"].iloc[0]), index), "rule": rule,
                      "directory": directory, "files": len(group), "state": state, "reason": _reason(group)})
    return pd.DataFrame(steps, columns=["claim", "rule", "directory", "files", "state", "reason"])


def read_benchmark(path: Path) -> dict[str, float] | None:
    """Seconds and peak RSS (MB) from a Snakemake ``benchmark.tsv``; None when absent or unreadable."""
    try:
        table = pd.read_csv(path, sep="\t")
        return {"seconds": float(table["s"].max()), "max_rss_mb": float(table["max_rss"].max())}
    except (OSError, KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None


def _job_device(directory: Path) -> str:
    try:
        return str(pd.read_csv(directory / "metrics.csv", usecols=["device"])["device"].iloc[0])
    except (OSError, KeyError, ValueError, IndexError, pd.errors.EmptyDataError):
        return "unknown"


def _graph_size(item: Mapping[str, Any], graphs: Mapping[str, Mapping[str, Any]]) -> tuple[float, float, float] | None:
    """(N, edges, K) of an item's substrate: prepared metadata, else published sizes with K at its floor."""
    meta = graphs.get(item["substrate"])
    if meta:
        return float(meta["N"]), float(meta["unsigned_edge_count"]), float(meta["estimated_K"])
    if item["connectome"] in PUBLISHED_SIZES:
        n, e = PUBLISHED_SIZES[item["connectome"]]
        return float(n), float(e), 3.0
    return None


def _work(job: Mapping[str, Any], item: Mapping[str, Any], size, epochs: int) -> float | None:
    if size is None:
        return None
    n, e, k = size
    return epochs * job["n_train"] * item["train_T"] * (k * e + n)


def training_costs(plan: Mapping[str, Any], epochs: Mapping[str, int],
                   graphs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Measured or estimated seconds and peak memory of every training job of the plan's items."""
    jobs = []
    for item in plan["items"]:
        size = _graph_size(item, graphs)
        for job in item["jobs"]:
            directory = Path(job["metrics"]).parent
            measured = read_benchmark(directory / "benchmark.tsv")
            jobs.append({"claim": item["experiment"], "directory": str(directory), "model": job["model"],
                         "seed": job["seed"], "n_train": job["n_train"], "sibling": str(directory.parent.parent),
                         "work": _work(job, item, size, epochs[item["experiment"]]),
                         "trained": job["model"] != "mean_predictor",
                         "device": _job_device(directory) if measured else "",
                         **(measured or {"seconds": np.nan, "max_rss_mb": np.nan}),
                         "source": "measured" if measured else ""})
    table = pd.DataFrame(jobs)
    if table.empty:
        return table
    done = table[table["source"] == "measured"]
    fitted = done[done["trained"] & done["work"].notna()]
    rate = float((fitted["seconds"] / fitted["work"]).median()) if len(fitted) else np.nan
    for index, row in table[table["source"] == ""].iterrows():
        siblings = done[done["sibling"] == row["sibling"]]
        if len(siblings):
            scale = row["n_train"] / siblings["n_train"].astype(float)
            table.loc[index, ["seconds", "max_rss_mb", "source"]] = [
                float((siblings["seconds"] * scale).median()), float(siblings["max_rss_mb"].max()),
                "same model, other seeds"]
        elif not row["trained"]:
            table.loc[index, ["seconds", "source"]] = [0.0, "no training"]
        elif row["work"] is not None and not math.isnan(row["work"]) and math.isfinite(rate):
            table.loc[index, ["seconds", "source"]] = [rate * row["work"], "work model fitted to measured jobs"]
        elif row["work"] is not None and not math.isnan(row["work"]):
            table.loc[index, ["seconds", "source"]] = [row["work"] * BENCH_STEP_SECONDS / BENCH_STEP_WORK,
                                                       f"bench figure: {BENCH_SOURCE}"]
        else:
            table.loc[index, "source"] = "unknown until the substrate's graph is prepared"
    return table


def plan_record(plan: Mapping[str, Any], steps: pd.DataFrame, costs: pd.DataFrame) -> dict[str, Any]:
    """plan.json: per claim element its steps by state, pending training jobs and their estimated cost."""
    claims = list(dict.fromkeys(["downloads", "substrates and controls", "task splits", "selectors",
                                 *[item["experiment"] for item in plan["items"]],
                                 *[f"cross_region_{f['family']}" for f in plan["transfer"]], "cross_region",
                                 "low_power_proxy", "evidence_report"]))
    state_of = dict(zip(steps["directory"] + "|" + steps["rule"], steps["state"]))
    record = {"claims": []}
    for claim in claims:
        own = steps[steps["claim"] == claim]
        jobs = costs[costs["claim"] == claim] if not costs.empty else costs
        if own.empty and jobs.empty:
            continue
        pending_jobs = (jobs[[state_of.get(d + "|train_model", "done") != "done" for d in jobs["directory"]]]
                        if not jobs.empty else jobs)
        trained = pending_jobs[pending_jobs["trained"]] if not pending_jobs.empty else pending_jobs
        record["claims"].append({
            "claim": claim,
            "steps": {state: int((own["state"] == state).sum()) for state in ("done", "stale", "missing")},
            "pending_steps": own[own["state"] != "done"][["rule", "directory", "state", "reason"]].to_dict("records"),
            "pending_training_jobs": int(len(trained)),
            "estimated_device_hours": float(trained["seconds"].sum() / 3600) if len(trained) else 0.0,
            "unpriced_jobs": int(trained["seconds"].isna().sum()) if len(trained) else 0,
            "peak_memory_mb": (float(trained["max_rss_mb"].max()) if len(trained) and trained["max_rss_mb"].notna().any()
                               else None),
            "cost_sources": sorted(set(trained["source"])) if len(trained) else [],
        })
    record["total_estimated_device_hours"] = sum(c["estimated_device_hours"] for c in record["claims"])
    record["jobs"] = costs.drop(columns=["sibling", "work"], errors="ignore").to_dict("records") if not costs.empty else []
    return record


def plan_markdown(record: Mapping[str, Any]) -> str:
    """plan.md: the one table a user reads before spending GPU hours, then the pending steps."""
    lines = ["# Evidence plan", "",
             "States are Snakemake's own (`snakemake --summary evidence`): *done* is current, *stale* exists but "
             "would be rebuilt (the reason says why), *missing* does not exist. Costs are per pending training job, "
             "upper bounds (early stopping can end a job sooner); the source column says where each estimate comes "
             "from.", "",
             "| claim element | done | stale | missing | pending training jobs | estimated device-hours | "
             "peak memory (MB) | cost from |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for claim in record["claims"]:
        steps = claim["steps"]
        hours = f"{claim['estimated_device_hours']:.3g}" + (f" (+{claim['unpriced_jobs']} unpriced)"
                                                             if claim["unpriced_jobs"] else "")
        memory = f"{claim['peak_memory_mb']:.0f}" if claim["peak_memory_mb"] is not None else "n/a"
        lines.append(f"| {claim['claim']} | {steps['done']} | {steps['stale']} | {steps['missing']} | "
                     f"{claim['pending_training_jobs']} | {hours} | {memory} | {'; '.join(claim['cost_sources']) or '-'} |")
    lines += ["", f"Total estimated device-hours still to spend: {record['total_estimated_device_hours']:.3g}", "",
              "## Pending steps", ""]
    for claim in record["claims"]:
        for step in claim["pending_steps"]:
            lines.append(f"- {claim['claim']}: `{step['rule']}` in `{step['directory']}`: {step['state']} "
                         f"({step['reason']})")
    if not any(claim["pending_steps"] for claim in record["claims"]):
        lines.append("Nothing is pending: every step of the plan is current.")
    return "\n".join(lines) + "\n"
