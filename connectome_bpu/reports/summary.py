"""``summary.md``: what was compared, on what, and what the paired differences say.

It opens with one table a reader can stop after: the task's primary metric (``PRIMARY_METRIC`` in
``metrics.py``) on the clean test split at the training length, the connectome model against every
topology control and every baseline, with the paired difference over seeds, its interval and the verdict
that interval supports (``docs/method.md#statistics``). The detail follows: every metric of every
model at the training length, the extrapolation over sequence lengths, and the paired difference of every
metric as one row per compared model; the intervals of that detail, and the noisy and other-length
splits, are left to ``paired_differences.csv`` rather than printed as a hundred rows.

Nothing is averaged over fewer seeds than the run has without saying so: a comparison that could not
pair every seed (a seed missing for one model, or a non-finite value) says in its ``seeds`` cell how
many it used and why the others are out ("2 of 3 seeds; seed 2 missing for `random`"), and a mean over
fewer seeds than its model ran says how many.

The summary names the actual substrate (the original benchmark's summary always said "hemibrain CX",
``docs/departures.md#figures-and-summary``) and states results; it never prints PASS. Every verdict is
computed here from the interval it is printed beside, with the same rule as ``paired_differences.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import DRIFT_COLUMN, HIGHER_IS_BETTER, METRIC_COLUMNS, PRIMARY_METRIC
from ..model_names import BASELINE_MODELS, GRU_MODELS, control_models
from ..results import interval_verdict, parse_seed_list
from ..substrates import KINDS

MODE_SENTENCES = {
    "frozen": "the recurrent core is frozen; only the input and output adapters (W_in, b_in, W_out, b_out) train",
    "observed": "every observed connectome edge is a trainable weight (support fixed, signs and magnitudes free)",
    "dense": "the full N x N recurrent matrix trains (support not preserved)",
}
# Added to the mode's sentence when the experiment turns within-episode plasticity on (docs/plasticity.md).
PLASTICITY_SENTENCES = {
    "none": "",
    "modulated_depression": "; within each sequence the synapses onto output neurons are depressed by a teaching "
                            "signal read from the input (modulated_depression, docs/plasticity.md), the same rule for "
                            "the connectome and every topology control",
}
UNITS = {"loss": "", "heading_angular_error": " (rad)", "heading_bump_angular_error": " (rad)",
         "home_bearing_angular_error": " (rad)", "final_home_bearing_angular_error": " (rad)",
         "position_rmse": " (world units)", "home_distance_rmse": " (world units)",
         "final_displacement_error": " (world units)", "final_home_distance_error": " (world units)",
         "bump_mse": "", "final_home_vector_cosine": "", "drift_slope_vs_T": " (units per step)",
         "uncued_home_bearing_angular_error": " (rad)", "uncued_home_distance_rmse": " (world units)",
         "yaw_rmse": " (rad per frame)", "forward_rmse": " (units per frame)", "lateral_rmse": " (units per frame)",
         "translation_rmse": " (units per frame)"}
# What each embedded substrate is built to show (it is a positive control for the task family it models).
SYNTHETIC_NOTES = {
    "synthetic_cx": "`synthetic_cx` is a procedurally generated CX-inspired ring-attractor connectome, not data from "
                    "an animal. It is built so that topology should matter for heading integration, which makes it "
                    "a positive control: the paired differences below show whether the pipeline detects that.",
    "synthetic_mb": "`synthetic_mb` is a procedurally generated mushroom-body-like connectome (PNs -> Kenyon cells "
                    "-> MBONs, APL feedback, DANs onto the KC -> MBON sites), not data from an animal. It is built "
                    "so that topology should matter for odour-valence memory, which makes it a positive control for "
                    "the associative task: the paired differences below show whether the pipeline detects that.",
    "synthetic_optic": "`synthetic_optic` is a procedurally generated optic-lobe-like motion circuit (one column per "
                       "ommatidium: lamina -> fast and slow medulla relays -> T4-like direction detectors with "
                       "null-side inhibition -> tangential cells per direction and region), not data from an animal. "
                       "It is built so that retinotopic order should matter for ego-motion, which makes it a "
                       "positive control for the optic-flow task: the paired differences below show whether the "
                       "pipeline detects that.",
}


def _fmt(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "n/a"
    if not np.isfinite(low):
        return f"{mean:.4g}"
    return f"{mean:.4g} [{low:.4g}, {high:.4g}]"


def _cell(row: pd.Series, metric: str) -> str:
    """Mean [interval]; followed by "(n of m seeds)" when non-finite values left seeds of the row out."""
    text = _fmt(row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])
    used = row.get(f"{metric}_n_seeds")
    if used is not None and np.isfinite(used) and int(used) < int(row["n_seeds"]):
        text += f" ({int(used)} of {int(row['n_seeds'])} seeds)"
    return text


def _seed_words(seeds: list[int]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)


def seeds_cell(row: pd.Series, run_seeds: list[int], primary: str, other: str) -> str:
    """How many of the run's seeds a paired row used, and why each other seed is out.

    ``"3"`` when every seed of the run was paired; else e.g. ``"2 of 3 seeds; seed 2 missing for `random`"``.
    """
    used = parse_seed_list(row.get("seeds_used")) if "seeds_used" in row else None
    n_used = int(row["n_seeds"])
    if used is None:   # a table without the seed lists: the count is all there is
        return str(n_used) if n_used >= len(run_seeds) else f"{n_used} of {len(run_seeds)} seeds"
    out = [s for s in run_seeds if s not in used]
    if not out:
        return str(n_used)
    no_primary = set(parse_seed_list(row.get("seeds_missing_primary")))
    no_control = set(parse_seed_list(row.get("seeds_missing_control")))
    nonfinite = set(parse_seed_list(row.get("seeds_nonfinite")))
    reasons: dict[str, list[int]] = {}
    for seed in out:
        if seed in nonfinite:
            reason = "non-finite"
        elif seed in no_control and seed not in no_primary:
            reason = f"missing for `{other}`"
        elif seed in no_primary and seed not in no_control:
            reason = f"missing for `{primary}`"
        else:   # listed for neither (absent from the whole table) or for both
            reason = f"missing for both `{primary}` and `{other}`"
        reasons.setdefault(reason, []).append(seed)
    return f"{n_used} of {len(run_seeds)} seeds; " + "; ".join(f"{_seed_words(seeds)} {reason}"
                                                                  for reason, seeds in reasons.items())


# Kinds of compared model, in the order the headline lists them.
TOPOLOGY_CONTROL, GRU_BASELINE, TRIVIAL_BASELINE, OTHER_MODEL = (
    "topology control", "baseline (GRU)", "baseline (trivial)", "other model")
_KIND_ORDER = (TOPOLOGY_CONTROL, GRU_BASELINE, TRIVIAL_BASELINE, OTHER_MODEL)
# How the detail matrix abbreviates the verdicts of ``results.interval_verdict`` (the headline prints them whole).
_SHORT_VERDICT = {"connectome better": "conn.", "control better": "other", "no clear difference": "unclear",
                  "single seed": "1 seed", "no pairs": "0 seeds"}


def model_kind(model: str) -> str:
    """What a compared model is: a topology control (same BPU, altered or no recurrence) or a baseline."""
    if control_models([model]):
        return TOPOLOGY_CONTROL
    if model in GRU_MODELS:
        return GRU_BASELINE
    if model in BASELINE_MODELS:
        return TRIVIAL_BASELINE
    return OTHER_MODEL


def _compared(models: list[str], primary: str) -> list[str]:
    """Every model but the connectome one: controls first, then baselines (each group in run order)."""
    others = [m for m in models if m != primary]
    return sorted(others, key=lambda m: _KIND_ORDER.index(model_kind(m)))


def _paired_at_train(paired: pd.DataFrame, train_T: int, n_train: int, primary: str) -> pd.DataFrame:
    """The connectome model's own pairs (not those of its learning-rule arms) at the training length and size."""
    if paired.empty:
        return paired
    return paired[(paired["primary"] == primary) & (paired["split"] == "test") & (paired["T"] == train_T)
                  & (paired["n_train"] == n_train)]


def _row_verdict(row: pd.Series) -> str:
    """The verdict of one paired row, from its interval (never from a stored label)."""
    return interval_verdict(row["metric"], float(row["ci_low"]), float(row["ci_high"]), int(row["n_seeds"]))


def summary_markdown(*, metadata: dict, substrate: str, task: str, mode: str, seeds: list[int], n_train: int,
                     train_T: int, models: list[str], primary: str, summary: pd.DataFrame,
                     paired: pd.DataFrame, level: float, plasticity: str = "none") -> str:
    kind = KINDS.get(metadata.get("connectome", ""), None)
    description = kind.description if kind else metadata.get("connectome", substrate)
    metrics = list(METRIC_COLUMNS[task])
    at_train = summary[(summary["split"] == "test") & (summary["T"] == train_T) & (summary["n_train"] == n_train)]
    paired_train = _paired_at_train(paired, train_T, n_train, primary)
    lines = ["# Benchmark Summary", ""]
    if metadata.get("synthetic"):
        lines += ["**SYNTHETIC SUBSTRATE**: " + SYNTHETIC_NOTES.get(
            metadata.get("connectome", ""), f"`{substrate}` is procedurally generated, not data from an animal."), ""]
    lines += [
        f"This benchmark uses the {description} (`{substrate}`) as a recurrent core; {MODE_SENTENCES[mode]}"
        f"{PLASTICITY_SENTENCES[plasticity]}. "
        f"It is compared with matched controls of the same size and with trivial and recurrent baselines on "
        f"`{task}`.", "",
        f"- Primary substrate: `{metadata['primary_matrix']}`; N=`{metadata['N']}`, edges=`{metadata['unsigned_edge_count']}`, "
        f"K=`{metadata['estimated_K']}` (raw median path length {metadata['k_raw_median']}).",
        f"- Sign coverage: `{metadata['sign_coverage']:.4f}`; spectral radius scaled to {metadata['rho_target']}.",
        f"- Pools: {metadata['pool_counts']}.",
        f"- Training: {n_train} sequences of T={train_T}; seeds {seeds}; intervals are {level:.0%} Student-t "
        f"intervals over seeds (none with one seed).", "",
    ]
    lines += _headline(at_train, paired_train, models, primary, PRIMARY_METRIC[task], train_T, n_train, level,
                       list(seeds))
    lines += [
        "## Detail", "",
        f"### Every metric, clean test at the training length (T={train_T})", "",
        "| model | trainable params | seeds | " + " | ".join(m + UNITS.get(m, "") for m in metrics) + " |",
        "|---|---:|---:|" + "---|" * len(metrics),
    ]
    for model in models:
        row = at_train[at_train["model"] == model]
        if row.empty:
            continue
        row = row.iloc[0]
        ran = int(row["n_seeds"])
        ran_cell = str(ran) if ran >= len(seeds) else f"{ran} of {len(seeds)}"
        lines.append(f"| {model} | {int(row['trainable_parameter_count']):,} | {ran_cell} | "
                     + " | ".join(_cell(row, m) for m in metrics) + " |")
    lines += ["", "`mean_predictor` predicts the train split's per-timestep mean target for every sequence (no "
              "learning from inputs); a model that does not beat it has learned nothing beyond the average. "
              "`gru` is a GRU with hidden size min(256, N), as in the original benchmark; `gru_matched` has about "
              "as many trainable parameters as the BPU adapters.", ""]
    lines += _baseline_lines(at_train, models, PRIMARY_METRIC[task])
    lines += _extrapolation_table(summary, models, metrics[1:3], n_train)
    lines += _paired_matrix(paired_train, models, primary, metrics + [DRIFT_COLUMN], train_T, level, len(seeds))
    lines += ["", "## Caveats", "",
              "- Results are evidence relative to matched controls under this task and these settings, not proof "
              "of biological computation. Check `control_validation.md` for what each control preserves, per seed.",
              "- Models are trained at one sequence length; longer test lengths measure extrapolation."]
    return "\n".join(lines) + "\n"


def _headline(at_train: pd.DataFrame, paired_train: pd.DataFrame, models: list[str], primary: str,
              metric: str, train_T: int, n_train: int, level: float, run_seeds: list[int]) -> list[str]:
    """The one table the summary leads with: ``metric`` per compared model, paired with the connectome."""
    better = "higher" if metric in HIGHER_IS_BETTER else "lower"
    favours = "positive" if metric in HIGHER_IS_BETTER else "negative"
    lines = [f"## Headline: `{metric}`{UNITS.get(metric, '')}, clean test at the training length", "",
             f"Clean test split, T={train_T}, {n_train} training sequences. Each row pairs the connectome model "
             f"`{primary}` with one other model on the same seeds: the difference is `{primary}` minus that model, "
             f"averaged over seeds, with its {level:.0%} interval. {better.capitalize()} `{metric}` is better, so "
             f"a {favours} difference favours `{primary}`. The verdict is read from the interval: it names a side "
             f"only when the interval excludes zero (`control better` means the model of that row is better), and "
             f"never on fewer than two paired seeds. `seeds` counts the seeds paired; when that is fewer than the "
             f"run's {len(run_seeds)}, it says which seeds are out and why.",
             "",
             f"| compared with | kind | `{primary}` mean | its mean | difference [{level:.0%} interval] | seeds | "
             f"verdict |",
             "|---|---|---:|---:|---|---|---|"]
    own = _mean(at_train, primary, metric)
    rows = paired_train[paired_train["metric"] == metric] if not paired_train.empty else paired_train
    for model in _compared(models, primary):
        match = rows[rows["control"] == model] if not rows.empty else rows
        if match.empty:
            difference, n_seeds, verdict = "n/a", "0", "not compared (no seeds shared with the connectome model)"
        else:
            row = match.iloc[0]
            difference = _fmt(row["mean_difference"], row["ci_low"], row["ci_high"])
            n_seeds, verdict = seeds_cell(row, run_seeds, primary, model), _row_verdict(row)
        theirs = _mean(at_train, model, metric)
        lines.append(f"| `{model}` | {model_kind(model)} | {_number(own)} | {_number(theirs)} | {difference} | "
                     f"{n_seeds} | {verdict} |")
    return lines + [""]


def _mean(at_train: pd.DataFrame, model: str, metric: str) -> float:
    row = at_train[at_train["model"] == model]
    column = f"{metric}_mean"
    return float(row.iloc[0][column]) if not row.empty and column in row else float("nan")


def _number(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else "n/a"


def _baseline_lines(at_train: pd.DataFrame, models: list[str], metric: str) -> list[str]:
    baseline = at_train[at_train["model"] == "mean_predictor"]
    if baseline.empty:
        return []
    baseline_value = float(baseline.iloc[0][f"{metric}_mean"])
    present = [m for m in models if m != "mean_predictor" and not at_train[at_train["model"] == m].empty]
    beaten = [m for m in present if _better(metric, _mean(at_train, m, metric), baseline_value)]
    others = [m for m in present if m not in beaten]
    return [f"- Mean `{metric}` better than `mean_predictor` ({baseline_value:.4g}): "
            f"{', '.join(beaten) or 'none'}; not better: {', '.join(others) or 'none'}.", ""]


def _better(metric: str, value: float, reference: float) -> bool:
    return value > reference if metric in HIGHER_IS_BETTER else value < reference


def _extrapolation_table(summary: pd.DataFrame, models: list[str], metrics: list[str], n_train: int) -> list[str]:
    clean = summary[(summary["split"] == "test") & (summary["n_train"] == n_train)]
    Ts = sorted(clean["T"].unique())
    if len(Ts) < 2:
        return []
    lines = ["### Clean test across sequence lengths", "",
             "| model | " + " | ".join(f"{m} T={T}" for m in metrics for T in Ts) + " |",
             "|---|" + "---|" * (len(metrics) * len(Ts))]
    for model in models:
        sub = clean[clean["model"] == model].set_index("T")
        if sub.empty:
            continue
        lines.append(f"| {model} | " + " | ".join(f"{sub.loc[T, f'{m}_mean']:.4g}" if T in sub.index else "n/a"
                                                  for m in metrics for T in Ts) + " |")
    return lines + [""]


def _paired_matrix(paired_train: pd.DataFrame, models: list[str], primary: str, metrics: list[str],
                   train_T: int, level: float, n_run_seeds: int) -> list[str]:
    """Every metric's paired difference at the training length: one row per compared model, not per pair."""
    lines = [f"### Paired differences of every metric: `{primary}` minus each model (clean test, T={train_T})",
             "",
             f"Mean difference over seeds, then the verdict of its {level:.0%} interval: `conn.` = `{primary}` "
             f"better, `other` = the row's model better (the interval excludes zero), `unclear` = the interval "
             f"includes zero, `1 seed` / `0 seeds` = no interval; `(2 of 3 seeds)` = fewer seeds paired than the "
             f"run has. Lower is better except for "
             f"{', '.join(f'`{m}`' for m in sorted(HIGHER_IS_BETTER))}. The intervals, the noisy test split and the "
             f"other sequence lengths are in `paired_differences.csv`.", ""]
    if paired_train.empty:
        return lines + ["No paired comparison is available (no model shares seeds with the connectome model).", ""]
    shown = [m for m in metrics if m in set(paired_train["metric"])]
    lines += ["| compared with | " + " | ".join(f"`{m}`" for m in shown) + " |", "|---|" + "---|" * len(shown)]
    for model in _compared(models, primary):
        rows = paired_train[paired_train["control"] == model].set_index("metric")
        if rows.empty:
            continue
        cells = []
        for metric in shown:
            if metric not in rows.index:
                cells.append("n/a")
                continue
            row = rows.loc[metric]
            n_pairs = int(row["n_seeds"])
            verdict = interval_verdict(metric, float(row["ci_low"]), float(row["ci_high"]), n_pairs)
            cell = f"{_number(float(row['mean_difference']))} {_SHORT_VERDICT.get(verdict, verdict)}"
            if 2 <= n_pairs < n_run_seeds:
                cell += f" ({n_pairs} of {n_run_seeds} seeds)"
            cells.append(cell)
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    return lines + [""]
