"""Rules of ``rules/evidence.smk``: selector decisions, the low-power proxy, the evidence report and the plan."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from .. import atomic, low_power, selector
from .. import figures as fig
from ..atomic import read_json
from ..errors import BPUInputError
from ..evidence_checks import checklist_record, evidence_checklist
from ..evidence_plan import (
    plan_markdown,
    plan_record,
    plan_steps,
    snakemake_summary,
    training_costs,
)
from ..reports.evidence_report import evidence_report_markdown
from ..tasks import task_spec

LOG = logging.getLogger(__name__)


def select_connectome(smk: Any) -> None:
    """The selector's decision for one task, now with the prepared graph's real K and pool counts."""
    task, planned = smk.wildcards.evidence_task, smk.params.planned
    metadata = read_json(smk.input.metadata)
    selection = selector.select_connectome(task, available=smk.params.available, metadata={planned: metadata},
                                           heading_bins=smk.params.heading_bins)
    if selection.selected.connectome != planned:
        raise BPUInputError(f"selector for task {task}: with the prepared graph's metadata it selects "
                            f"{selection.selected.connectome}, but the plan trained on {planned}; rerun the workflow "
                            "so the plan follows the selector")
    selector.write_selection(selection, smk.output.json, smk.output.md)
    LOG.info("task %s: %s selected (K=%s)", task, planned, selection.expected_k)


def low_power_proxy(smk: Any) -> None:
    """Footprint and operations per substrate and bitwidth, latency per model and split, measured CPU latency."""
    rows, measured, latency = [], [], []
    for substrate, info in smk.params.substrates.items():
        spec = task_spec(info["task"])
        for row in low_power.graph_proxy(info["graph_dir"], list(smk.params.bitwidths),
                                         task_dims=(spec.input_dim, spec.output_dim), T=info["T"],
                                         batch=info["batch"]):
            rows.append({"substrate": substrate, "experiment": info["experiment"], **row})
        LOG.info("measuring CPU latency on %s", substrate)
        measured.append({"substrate": substrate, **low_power.measure_latency(
            info["graph_dir"], info["task"], batch=smk.params.latency["batch"], repeats=smk.params.latency["repeats"])})
    for experiment, path in zip(smk.params.experiments, smk.input.by_seed):
        table = low_power.latency_by_model(pd.read_csv(path), source=path)
        latency.append(table.assign(experiment=experiment))
    summary = pd.DataFrame(rows)
    footprint_columns = [c for c in summary.columns if "macs" not in c and c not in ("recurrent_products_per_sequence",
                                                                                   "sequence_ops_reduction")]
    atomic.write_csv(smk.output.low_power_proxy_summary, summary[footprint_columns + ["sequence_ops_reduction"]])
    atomic.write_csv(smk.output.low_power_operations, summary.drop_duplicates("substrate"))
    latency_table = pd.concat(latency, ignore_index=True)
    atomic.write_csv(smk.output.low_power_latency, latency_table)
    atomic.write_csv(smk.output.measured_latency, pd.DataFrame(measured))
    atomic.write_text(smk.output.low_power_proxy_report,
                      low_power.low_power_report_markdown(rows, latency_table, measured))


def evidence_report(smk: Any) -> None:
    """The checklist (every DONE computed), the report and its forest plot of paired connectome advantages."""
    plan, configs = smk.params.plan, dict(smk.params.configs)
    low_power = pd.read_csv(plan["low_power"]["low_power_proxy_summary.csv"])
    bitwidths = sorted({int(b) for b in low_power["bitwidth"]}, reverse=True)
    checklist = evidence_checklist(plan, configs, bitwidths)
    manifests = {item["experiment"]: str(Path(item["dir"]) / "run_manifest.json") for item in plan["items"]}
    transfer = (pd.read_csv(Path(plan["cross_region_dir"]) / "cross_region_advantage.csv")
                if plan["transfer"] else None)
    synthetic = any(read_json(Path(d) / "graph_metadata.json").get("synthetic") for d in plan["substrates"].values())
    text = evidence_report_markdown(plan=plan, checklist=checklist, manifests=manifests, transfer=transfer,
                                    low_power=low_power,
                                    measured=pd.read_csv(plan["low_power"]["measured_latency.csv"]),
                                    synthetic=synthetic)
    atomic.write_json(smk.output.checklist, checklist_record(checklist, plan, configs, bitwidths))
    atomic.write_text(smk.output.report, text)
    fig.connectome_advantage(advantage_rows(plan), options=fig.FigureOptions.from_config(smk.params.options),
                             synthetic=synthetic, path=Path(smk.output.figure))
    LOG.info("evidence report: %d of %d checklist items DONE", sum(c.status == "DONE" for c in checklist),
             len(checklist))


def advantage_rows(plan: dict) -> pd.DataFrame:
    """Per item and matched control, the paired advantage on the primary metric (from the sweep statistics)."""
    rows = []
    for item in plan["items"]:
        paired = pd.read_csv(Path(item["dir"]) / "sweep" / "paired_comparisons.csv")
        picked = paired[(paired["metric"] == item["metric"]) & (paired["comparison_type"] == "matched_topology_control")]
        rows += [{"experiment": item["experiment"], "control": r.baseline_model, "metric": item["metric"],
                  "mean": r.mean_delta, "ci_low": r.ci_low, "ci_high": r.ci_high, "holm_p": r.t_p_holm}
                 for r in picked.itertuples()]
    return pd.DataFrame(rows, columns=["experiment", "control", "metric", "mean", "ci_low", "ci_high", "holm_p"])


def evidence_plan(smk: Any) -> None:
    """plan.md and plan.json: per claim element the steps in Snakemake's view and what the rest will cost."""
    plan = smk.params.plan
    summary = snakemake_summary(smk.params.snakefile, smk.params.config)
    steps = plan_steps(summary, plan)
    graphs = {substrate: read_json(Path(directory) / "graph_metadata.json")
              for substrate, directory in plan["substrates"].items()
              if (Path(directory) / "graph_metadata.json").is_file()}
    epochs = {name: int(cfg["training"]["epochs"]) for name, cfg in smk.params.configs.items()}
    record = plan_record(plan, steps, training_costs(plan, epochs, graphs))
    atomic.write_json(smk.output.json, record)
    atomic.write_text(smk.output.md, plan_markdown(record))
    LOG.info("plan: %d steps, %.2f device-hours still to spend", len(steps), record["total_estimated_device_hours"])
