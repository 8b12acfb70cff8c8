"""The evidence plan: which experiments support which claim element, on the substrate the selector picks.

``config.evidence`` lists claim elements (``items``), each a task and a partial config. Resolving the plan
runs the connectome selector (:mod:`connectome_bpu.selector`) for each item's task over the allowed
substrates and turns the item into an ordinary experiment of the DAG: ``connectome`` is the selected
substrate, ``models`` its matched controls (baselines are added as in every run), ``seeds`` the plan's
seeds, and the name ``<item>_n<seeds>seed`` carries the real seed count. Cross-region transfer becomes
two more experiments per task family (the task on the other family's substrate, and that substrate
size-matched), paired with the item itself by the ``cross_region`` rule.

So the plan *is* the DAG: ``snakemake -n evidence`` lists every job still needed, and changing the
allow-list, the seeds or an item's config changes exactly the experiments it should
(docs/evidence_planning.md#the-plan-is-the-dag).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import BPUInputError
from .experiments import NAME_PATTERN
from .selector import Selection, select_connectome

# Keys the plan decides for every item; an item's own config may not set them.
PLAN_DECIDES = ("connectome", "models", "seeds", "experiments", "cross_region", "evidence")
PATH_TASKS = ("cartesian", "cx_polar_bump", "cx_landmark_bump")
FAMILY_TASKS = {"associative": ("mb_associative",), "path": PATH_TASKS}


@dataclass(frozen=True)
class EvidenceItem:
    """One claim element: the experiment that supports it and the selector decision behind it."""

    name: str
    claim: str
    priority: str
    task: str
    experiment: str
    selection: Selection

    @property
    def connectome(self) -> str:
        return self.selection.selected.connectome


@dataclass(frozen=True)
class TransferFamily:
    """A cross-region family: the item on its own region and the generated experiments on the other one."""

    family: str
    matched: str
    mismatched: str
    size_matched: str | None


@dataclass(frozen=True)
class EvidencePlan:
    """The resolved plan: items, cross-region families, and the settings of the plan-wide steps."""

    items: tuple[EvidenceItem, ...]
    transfer: tuple[TransferFamily, ...]
    transfer_priority: str
    seeds: tuple[int, ...]
    available: tuple[str, ...] | None
    bitwidths: tuple[int, ...]
    latency: Mapping[str, int]

    @property
    def tasks(self) -> list[str]:
        """Selector tasks, each once, in item order."""
        return list(dict.fromkeys(item.task for item in self.items))

    def selection(self, task: str) -> Selection:
        return next(item.selection for item in self.items if item.task == task)

    @property
    def experiments(self) -> list[str]:
        """Every experiment of the plan: items first, then the generated cross-region conditions."""
        names = [item.experiment for item in self.items]
        for family in self.transfer:
            names += [n for n in (family.mismatched, family.size_matched) if n]
        return names


def seed_suffix(seeds) -> str:
    return f"n{len(seeds)}seed"


def _item_problems(index: int, entry: Mapping[str, Any]) -> list[str]:
    label = f"evidence.items[{index}] ({entry.get('name')!r})"
    problems = []
    if not NAME_PATTERN.match(str(entry.get("name", ""))):
        problems.append(f"{label}: name must be a letter followed by letters, digits or '_' (it names an experiment)")
    decided = sorted(set(entry.get("config") or {}) & set(PLAN_DECIDES))
    if decided:
        problems.append(f"{label}: config sets {', '.join(decided)}, which the evidence plan decides (the selector "
                        "picks the substrate and its matched controls; evidence.seeds sets the seeds)")
    return problems


def _selection_problems(index: int, entry: Mapping[str, Any], selection: Selection, available) -> list[str]:
    """A pick the plan must not run: a substrate off the allow-list (the selector keeps a quarter of an
    unavailable candidate's score, so it can still rank first) or one that shares no tag with the task."""
    label = f"evidence.items[{index}] ({entry.get('name')!r})"
    top = selection.ranking[0]
    if available and selection.selected.connectome not in available:
        return [f"{label}: the selector ranks {selection.selected.connectome} first for task {entry['task']}, but it "
                f"is not on evidence.available ({', '.join(available)}): the allow-list excludes every candidate "
                "suited to this task"]
    if top.semantic_score == 0:
        return [f"{label}: no allowed substrate shares a tag with task {entry['task']} (best: "
                f"{selection.selected.connectome}, score {top.total_score:.3f}); add a suitable one to "
                "evidence.available"]
    return []


def _item_experiment(spec: Mapping[str, Any], entry: Mapping[str, Any], selection: Selection,
                     name: str) -> dict[str, Any]:
    """The experiment entry of one item: its config, the task, the selected substrate and controls."""
    override = copy.deepcopy(dict(entry.get("config") or {}))
    override.setdefault("task", {})["name"] = entry["task"]
    override.setdefault("training", {}).setdefault("epochs", spec["epochs"])
    return {"name": name, **override, "connectome": selection.selected.connectome,
            "models": list(selection.matched_controls), "seeds": list(spec["seeds"])}


def _transfer(items: dict[str, EvidenceItem], entries: dict[str, dict], spec: Mapping[str, Any],
              suffix: str) -> tuple[list[TransferFamily], list[dict], list[str]]:
    """Cross-region: each family's item, the same experiment on the other family's substrate, and that
    substrate size-matched to the item's (one model: the item's connectome model)."""
    families, experiments, problems = [], [], []
    named = {family: spec.get(family) for family in FAMILY_TASKS}
    for family, item_name in named.items():
        if item_name not in items:
            problems.append(f"evidence.cross_region.{family} is {item_name!r}; expected the name of an evidence item "
                            f"(one of {', '.join(items) or 'none'})")
        elif items[item_name].task not in FAMILY_TASKS[family]:
            problems.append(f"evidence.cross_region.{family} names item {item_name!r}, whose task "
                            f"{items[item_name].task!r} is not a {family} task ({', '.join(FAMILY_TASKS[family])})")
    if problems:
        return [], [], problems
    for family, other in (("associative", "path"), ("path", "associative")):
        item, other_item = items[named[family]], items[named[other]]
        base = {k: v for k, v in entries[item.name].items() if k != "name"}
        primary = item.selection.matched_controls[0]
        conditions = {"mismatched": f"cross_region_{family}_mismatched_{suffix}"}
        if spec.get("size_matched", True):
            conditions["size_matched"] = f"cross_region_{family}_size_matched_{suffix}"
        for condition, name in conditions.items():
            entry = {**copy.deepcopy(base), "name": name, "connectome": other_item.connectome, "models": [primary]}
            entry.setdefault("training", {})["include_gru"] = False
            entry["task"]["sample_efficiency_fractions"] = [1.0]
            if condition == "size_matched":
                entry["size_match"] = {"like": item.experiment, "seed": 0}
            experiments.append(entry)
        families.append(TransferFamily(family, item.experiment, conditions["mismatched"],
                                       conditions.get("size_matched")))
    return families, experiments, problems


def resolve_evidence(config: Mapping[str, Any]) -> tuple[EvidencePlan | None, dict[str, Any]]:
    """The plan of ``config.evidence`` and the config with its experiments (and cross-region families) added.

    Without an ``evidence`` block the config is returned unchanged. Every problem (a bad item name, an
    item config that sets what the plan decides, an unknown task or connectome, an allow-list that
    excludes every candidate, a cross-region family naming no item) is reported in one error.
    """
    spec = config.get("evidence")
    if not spec:
        return None, dict(config)
    suffix = seed_suffix(spec["seeds"])
    problems: list[str] = []
    items: dict[str, EvidenceItem] = {}
    entries: dict[str, dict] = {}
    for index, entry in enumerate(spec["items"]):
        found = _item_problems(index, entry)
        if entry.get("name") in items:
            found.append(f"evidence item name {entry['name']!r} is used twice")
        try:
            selection = select_connectome(entry["task"], available=spec.get("available"),
                                          heading_bins=config["task"]["heading_bins"])
        except BPUInputError as error:
            found.append(f"evidence.items[{index}] ({entry.get('name')!r}): {error}")
        else:
            found += _selection_problems(index, entry, selection, spec.get("available"))
        if found:
            problems += found
            continue
        name = f"{entry['name']}_{suffix}"
        items[entry["name"]] = EvidenceItem(name=entry["name"], claim=entry.get("claim", ""),
                                            priority=entry.get("priority", "required"), task=entry["task"],
                                            experiment=name, selection=selection)
        entries[entry["name"]] = _item_experiment(spec, entry, selection, name)
    transfer, transfer_entries = [], []
    if not problems and spec.get("cross_region"):
        transfer, transfer_entries, found = _transfer(items, entries, spec["cross_region"], suffix)
        problems += found
    if problems:
        raise BPUInputError("invalid evidence plan:\n  - " + "\n  - ".join(problems))
    resolved = dict(config)
    resolved["experiments"] = list(config.get("experiments") or []) + list(entries.values()) + transfer_entries
    resolved["cross_region"] = (list(config.get("cross_region") or [])
                                + [{"family": f.family, "matched": f.matched, "mismatched": f.mismatched,
                                    "size_matched": f.size_matched} for f in transfer])
    plan = EvidencePlan(items=tuple(items.values()), transfer=tuple(transfer),
                        transfer_priority=(spec.get("cross_region") or {}).get("priority", "required"),
                        seeds=tuple(int(s) for s in spec["seeds"]),
                        available=tuple(spec["available"]) if spec.get("available") else None,
                        bitwidths=tuple(spec["bitwidths"]), latency=dict(spec["latency"]))
    return plan, resolved


def evidence_overview(plan: Mapping[str, Any]) -> str:
    """One screen, printed when the workflow starts: per claim element, where it runs and how much is on disk.

    It reads only which files exist (so it stays instant on a plan of hundreds of jobs); whether a file on
    disk is still current is Snakemake's call, listed with a reason for every pending job, and the plan
    export (`snakemake evidence_plan`) records both views.
    """
    lines = [f"Evidence plan: {len(plan['items'])} claim elements, seeds {plan['seeds']} "
             f"(results on disk / planned; pending jobs and their reasons follow from Snakemake)",
             f"  {'claim element':<34} {'priority':<12} {'substrate':<24} {'models':>6} {'jobs on disk':>13}"]
    for item in plan["items"]:
        jobs = [job["metrics"] for job in item["jobs"]]
        done = sum(Path(path).exists() for path in jobs)
        lines.append(f"  {item['experiment']:<34} {item['priority']:<12} {item['connectome']:<24} "
                     f"{len(item['models']):>6} {f'{done}/{len(jobs)}':>13}")
    for family in plan["transfer"]:
        done, total = sum(Path(path).exists() for path in family["jobs"]), len(family["jobs"])
        label = f"cross_region ({family['family']})"
        lines.append(f"  {label:<34} {plan['transfer_priority']:<12} {'matched/mismatched':<24} {'':>6} "
                     f"{f'{done}/{total}':>13}")
    selectors = sum(Path(s["json"]).exists() for s in plan["selectors"].values())
    lines.append(f"  selectors: {selectors}/{len(plan['selectors'])} written ("
                 + ", ".join(f"{task} -> {s['connectome']}" for task, s in plan["selectors"].items()) + ")")
    report = Path(plan["low_power"]["low_power_proxy_report.md"])
    lines.append(f"  low-power proxy: {'written' if report.exists() else 'missing'}; report, checklist and "
                 f"plan export in {report.parent.parent}/ (`snakemake evidence_plan` for states and cost)")
    return "\n".join(lines)
