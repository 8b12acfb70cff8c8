"""The benchmark figures, drawn from aggregated tables (never from raw jobs).

Path-integration tasks get four (error vs length, loss curves, error vs noise, sample efficiency); the
associative task, which has one episode length and no noise sets, gets the loss curves, its recall
accuracy by probe phase and sample efficiency (``figure_names.figures_for``).

Every curve is a mean over seeds with a t interval (error bars or a band) at the configured level,
every axis names its quantity and unit, and baselines are drawn beside the models in a fixed style so
a reader sees at a glance whether a model learned more than the average.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from . import atomic  # noqa: E402
from .model_names import arm_model_name, control_base, is_dale  # noqa: E402
from .results import t_interval  # noqa: E402

# Ego-motion components of the optic-flow targets, in output order, with their units.
VELOCITY_COMPONENTS = (("yaw", "yaw (rad/frame)"), ("forward", "forward (units/frame)"),
                       ("lateral", "lateral (units/frame)"))
TRACE_EPISODES = 3
TRACE_CONTROLS = 2     # topology controls drawn beside the connectome (more lines would hide the truth)
PANELS = {
    "cartesian": [("heading_angular_error", "Heading error (rad)"), ("position_rmse", "Position RMSE (world units)")],
    "cx_polar_bump": [("heading_bump_angular_error", "Heading error (rad)"),
                      ("home_distance_rmse", "Home-distance RMSE (world units)")],
    "cx_landmark_bump": [("home_bearing_angular_error", "Home-bearing error (rad)"),
                         ("home_distance_rmse", "Home-distance RMSE (world units)")],
    "mb_associative": [("reversal_probe_accuracy", "Recall accuracy after reversal (fraction)"),
                       ("initial_probe_accuracy", "Recall accuracy before reversal (fraction)")],
    "optic_flow": [("yaw_rmse", "Yaw-rate RMSE (rad per frame)"),
                   ("translation_rmse", "Translation RMSE (units per frame)")],
}
# Bars of the associative accuracy figure: which probe steps each accuracy counts.
ACCURACY_PHASES = [("initial_probe_accuracy", "initial probe"), ("reversal_probe_accuracy", "final probe (all)"),
                   ("reversed_odour_accuracy", "final probe (reversed odours)")]
HATCHES = ("", "//", "xx")
_FAMILY_COLOURS = {"cx_bpu": "#1f4e9c", "connectome_bpu": "#1f4e9c", "random": "#d95f02",
                   "degree_shuffle": "#7570b3", "weight_shuffle": "#e7298a", "no_recurrence": "#66a61e",
                   "random_weight_topology": "#a6761d", "random_sparse": "#e6ab02",
                   "gru": "#7f7f7f", "gru_matched": "#b3b3b3", "mean_predictor": "#000000"}


@dataclass(frozen=True)
class FigureOptions:
    dpi: int = 150
    width_in: float = 7.0
    height_in: float = 4.5
    interval: float = 0.95

    @classmethod
    def from_config(cls, figures_cfg: dict) -> "FigureOptions":
        return cls(**{k: figures_cfg[k] for k in cls.__dataclass_fields__})


def model_style(model: str) -> dict:
    colour = _FAMILY_COLOURS.get(control_base(model), "#a6761d")
    style = {"color": colour, "marker": "o", "linestyle": "-", "linewidth": 1.6, "markersize": 4}
    if is_dale(model):
        style.update(linestyle="--", marker="s")
    if model in ("gru", "gru_matched"):
        style.update(marker="^", linewidth=1.2)
    if model == "mean_predictor":
        style.update(linestyle=":", marker="x", linewidth=1.4)
    if model in ("cx_bpu", "connectome_bpu"):
        style.update(linewidth=2.4, markersize=5)
    return style


def _label(model: str, params: dict[str, int]) -> str:
    count = params.get(model)
    return f"{model} ({count:,} params)" if count is not None else model


def _interval_columns(summary: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = summary[f"{metric}_mean"].to_numpy(float)
    low = np.nan_to_num(mean - summary[f"{metric}_ci_low"].to_numpy(float), nan=0.0)
    high = np.nan_to_num(summary[f"{metric}_ci_high"].to_numpy(float) - mean, nan=0.0)
    return mean, low, high


def _finish(fig, axes, title: str, options: FigureOptions, synthetic: bool, path: Path | None) -> plt.Figure:
    """Grid, one legend entry per model, the title (with the SYNTHETIC mark); written to ``path`` if given.

    The figure is returned (closed to pyplot, its artists intact) so that its content can be inspected.
    """
    for ax in axes:
        ax.grid(alpha=0.25)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), frameon=False, fontsize=8,
               bbox_to_anchor=(0.5, 0.0))
    suffix = "\nSYNTHETIC substrate: not data from an animal" if synthetic else ""
    fig.suptitle(title + suffix, fontsize=10, color="#b00020" if synthetic else "black")
    rows = int(np.ceil(len(labels) / 4))
    fig.tight_layout(rect=(0, 0.02 + 0.042 * rows, 1, 1))
    if path is not None:
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=options.dpi, format="png")
    plt.close(fig)
    return fig


def _wrapped_name(name: str, width: int = 22) -> str:
    """A long identifier (a size-matched substrate's name) split at its hyphens into lines of about ``width``
    characters, so neighbouring tick labels do not run into each other."""
    lines = [""]
    for part in name.split("-"):
        piece = part if not lines[-1] else f"-{part}"
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append(piece)
        else:
            lines[-1] += piece
    return "\n".join(lines)


def _dodge(x: np.ndarray, index: int, count: int, *, log: bool = False) -> np.ndarray:
    """Shift model ``index`` of ``count`` sideways a little so error bars at the same x stay readable."""
    x = np.asarray(x, dtype=float)
    offset = (index - (count - 1) / 2) / max(count, 1)
    if log:
        return x * np.exp(0.15 * offset)
    span = (x.max() - x.min()) if len(x) > 1 else 1.0
    return x + 0.06 * span * offset


def _panel_figure(options: FigureOptions):
    fig, axes = plt.subplots(1, 2, figsize=(options.width_in * 1.6, options.height_in * 1.35))
    return fig, axes


def _params(summary: pd.DataFrame) -> dict[str, int]:
    return {m: int(c) for m, c in summary.groupby("model")["trainable_parameter_count"].first().items()}


def error_vs(summary: pd.DataFrame, *, task: str, split: str, x: str, xlabel: str, title: str, models: list[str],
             options: FigureOptions, synthetic: bool, path: Path | None = None) -> plt.Figure:
    """Mean test error (+/- interval over seeds) against sequence length or input noise."""
    rows = summary[summary["split"] == split]
    fig, axes = _panel_figure(options)
    params = _params(summary)
    at_T = f" at T={int(rows['T'].iloc[0])}" if x != "T" and not rows.empty else ""
    present = [m for m in models if (rows["model"] == m).any()]
    for ax, (metric, ylabel) in zip(axes, PANELS[task]):
        for i, model in enumerate(present):
            sub = rows[rows["model"] == model].sort_values(x)
            mean, low, high = _interval_columns(sub, metric)
            ax.errorbar(_dodge(sub[x], i, len(present)), mean, yerr=[low, high], capsize=3,
                        label=_label(model, params), **model_style(model))
        ax.set_xticks(np.sort(rows[x].unique()))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel + at_T)
    return _finish(fig, axes, f"{title} (mean over seeds, {options.interval:.0%} t interval)", options, synthetic, path)


def loss_curve(history: pd.DataFrame, *, models: list[str], options: FigureOptions, synthetic: bool,
               path: Path | None = None) -> plt.Figure:
    """Train and validation loss per epoch, mean over seeds with an interval band (seeds not mixed)."""
    fig, axes = _panel_figure(options)
    for ax, column, name in zip(axes, ("train_loss", "val_loss"), ("Training", "Validation")):
        for model in models:
            sub = history[history["model"] == model]
            if sub.empty:
                continue
            epochs = np.sort(sub["epoch"].unique())
            stats_ = [t_interval(sub.loc[sub["epoch"] == e, column].to_numpy(), options.interval) for e in epochs]
            mean, low, high = (np.array(v) for v in zip(*stats_))
            style = model_style(model)
            ax.plot(epochs, mean, label=model, **style)
            ax.fill_between(epochs, low, high, color=style["color"], alpha=0.15, linewidth=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Epoch")
        ax.set_ylabel(f"{name} loss (task loss, dimensionless)")
        ax.set_title(f"{name} loss", fontsize=9)
    return _finish(fig, axes, f"Training and validation loss (mean over seeds, {options.interval:.0%} band; "
                       "runs stop early at different epochs)", options, synthetic, path)


def sample_efficiency(summary: pd.DataFrame, *, task: str, T: int, models: list[str], options: FigureOptions,
                      synthetic: bool, path: Path | None = None) -> plt.Figure:
    """Final clean-test error at the training length against the number of training sequences."""
    rows = summary[(summary["split"] == "test") & (summary["T"] == T)]
    fig, axes = _panel_figure(options)
    present = [m for m in models if (rows["model"] == m).any()]
    for ax, (metric, ylabel) in zip(axes, PANELS[task]):
        for i, model in enumerate(present):
            sub = rows[rows["model"] == model].sort_values("n_train")
            mean, low, high = _interval_columns(sub, metric)
            ax.errorbar(_dodge(sub["n_train"], i, len(present), log=True), mean, yerr=[low, high], capsize=3,
                        label=model, **model_style(model))
        ax.set_xscale("log")
        ticks = np.sort(rows["n_train"].unique())
        ax.set_xticks(ticks, [str(int(t)) for t in ticks])
        # Fixed margins: with one training size, autoscaling would stretch the models' small sideways offsets
        # over the whole axis, as if they had been trained on different numbers of sequences.
        ax.set_xlim(ticks[0] / 1.6, ticks[-1] * 1.6)
        ax.minorticks_off()
        ax.set_xlabel("Training sequences (nested subsets of the train split, log scale)")
        ax.set_ylabel(f"{ylabel} at T={T}")
    return _finish(fig, axes, f"Sample efficiency (mean over seeds, {options.interval:.0%} t interval)", options,
            synthetic, path)


def accuracy_by_phase(by_seed: pd.DataFrame, *, models: list[str], options: FigureOptions, synthetic: bool,
                      path: Path | None = None) -> plt.Figure:
    """Test recall accuracy per probe phase and model: bars = mean over seeds with a t interval, dots = seeds.

    Chance is 0.5 on every phase; a network that ignores the reversal scores 0 on the reversed odours.
    """
    rows = by_seed[by_seed["split"] == "test"]
    present = [m for m in models if (rows["model"] == m).any()]
    fig, ax = plt.subplots(figsize=(options.width_in * 1.6, options.height_in * 1.35))
    width = 0.8 / len(ACCURACY_PHASES)
    for j, (metric, phase) in enumerate(ACCURACY_PHASES):
        for i, model in enumerate(present):
            values = rows.loc[rows["model"] == model, metric].to_numpy(float)
            mean, low, high = t_interval(values, options.interval)
            x = i + (j - (len(ACCURACY_PHASES) - 1) / 2) * width
            ax.bar(x, mean, width * 0.9, color=model_style(model)["color"], alpha=0.35 + 0.25 * j,
                   edgecolor="black", linewidth=0.5, hatch=HATCHES[j])
            ax.errorbar(x, mean, yerr=[[np.nan_to_num(mean - low)], [np.nan_to_num(high - mean)]], color="black",
                        capsize=3, linewidth=1)
            ax.scatter(np.full(values.size, x), values, s=10, color="black", zorder=3)
    for j, (_, phase) in enumerate(ACCURACY_PHASES):   # legend swatches in grey: colour is the model
        ax.bar(np.nan, np.nan, color="#d9d9d9", edgecolor="black", linewidth=0.5, hatch=HATCHES[j], label=phase)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(present)), present, rotation=20, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("Test recall accuracy (fraction of probe steps; chance 0.5)")
    ax.set_xlabel("Model")
    return _finish(fig, [ax], f"Associative recall by probe phase (bars: mean over seeds, {options.interval:.0%} t "
                              "interval; dots: seeds; bar colour = model, hatch = phase)", options, synthetic, path)


def velocity_traces(examples: dict[str, dict[str, np.ndarray]], *, split: str, seed: int, models: list[str],
                    options: FigureOptions, synthetic: bool, path: Path | None = None) -> plt.Figure:
    """Predicted against true ego-motion over time for the first test episodes, one row per component.

    ``examples`` maps a model to its job's ``test_examples.npz`` arrays (seed ``seed``). Every model sees the
    same episodes; step 0 is drawn hollow because it is a single frame and carries no motion (it is not
    scored). Drawn: the first model (the connectome), the next ``TRACE_CONTROLS`` models of the run, and the
    GRU and mean-predictor baselines; the tables hold every model.
    """
    present = [m for m in models if m in examples]
    baselines = [m for m in present if m in ("gru_matched", "mean_predictor")]
    present = [m for m in present if m not in baselines][:1 + TRACE_CONTROLS] + baselines
    target = next(iter(examples.values()))[f"target__{split}"]
    episodes = min(TRACE_EPISODES, target.shape[0])
    fig, axes = plt.subplots(len(VELOCITY_COMPONENTS), episodes, squeeze=False, sharex=True,
                             figsize=(options.width_in * 1.6, options.height_in * 1.6))
    steps = np.arange(target.shape[1])
    for row, (_, ylabel) in enumerate(VELOCITY_COMPONENTS):
        for col in range(episodes):
            ax = axes[row, col]
            ax.plot(steps, target[col, :, row], color="black", linewidth=2.2, label="true")
            for model in present:
                style = model_style(model)
                output = examples[model][f"output__{split}"][col, :, row]
                ax.plot(steps[1:], output[1:], color=style["color"], linestyle=style["linestyle"], linewidth=1.3,
                        marker=style["marker"], markersize=2.5, label=model)
                ax.plot(steps[:1], output[:1], color=style["color"], marker="o", markerfacecolor="none",
                        linestyle="none")
            if col == 0:
                ax.set_ylabel(ylabel, fontsize=8)
            if row == 0:
                ax.set_title(f"test episode {col + 1}", fontsize=9)
            if row == len(VELOCITY_COMPONENTS) - 1:
                ax.set_xlabel("Frame")
    return _finish(fig, list(axes.ravel()), f"Predicted (coloured) vs true (black) ego-motion, seed {seed}, "
                                            f"split {split}; hollow markers: frame 0, not scored", options,
                   synthetic, path)


def error_by_preset(by_seed: pd.DataFrame, *, presets: list[tuple[str, str]], metric: str, ylabel: str,
                    models: list[str], options: FigureOptions, synthetic: bool, path: Path | None = None
                    ) -> plt.Figure:
    """Test error per difficulty preset and model: mean over seeds with a t interval, dots = seeds.

    ``presets`` lists (split label, preset name) in difficulty order; the label ``test`` marks the training
    preset.
    """
    present = [m for m in models if (by_seed["model"] == m).any()]
    fig, ax = plt.subplots(figsize=(options.width_in * 1.4, options.height_in * 1.25))
    x = np.arange(len(presets), dtype=float)
    for i, model in enumerate(present):
        means, lows, highs = [], [], []
        for label, _ in presets:
            values = by_seed.loc[(by_seed["model"] == model) & (by_seed["split"] == label), metric].to_numpy(float)
            mean, low, high = t_interval(values, options.interval)
            means.append(mean), lows.append(mean - low), highs.append(high - mean)
            ax.scatter(np.full(values.size, _dodge(x, i, len(present))[len(means) - 1]), values, s=8,
                       color=model_style(model)["color"], alpha=0.6, zorder=3)
        style = model_style(model)
        ax.errorbar(_dodge(x, i, len(present)), means, yerr=[np.nan_to_num(lows), np.nan_to_num(highs)],
                    capsize=3, label=model, **style)
    ax.set_xticks(x, [name for _, name in presets])
    trained = next((name for label, name in presets if label == "test"), "?")
    ax.set_xlabel(f"Difficulty preset of the test split (contrast, sensor noise, acceptance angle); "
                  f"models trained on {trained}")
    ax.set_ylabel(ylabel)
    return _finish(fig, [ax], f"Ego-motion error by difficulty (mean over seeds, {options.interval:.0%} t interval; "
                              "dots: seeds)", options, synthetic, path)


_CONDITION_COLOURS = {"matched": "#1f4e9c", "mismatched": "#c0392b", "size_matched": "#e67e22"}


def cross_region_success(success: pd.DataFrame, *, options: FigureOptions, synthetic: bool,
                         path: Path | None = None) -> plt.Figure:
    """Per task family, each condition's success (bar: mean over seeds with a t interval; dots: seeds)."""
    families = list(dict.fromkeys(success["family"]))
    fig, axes = plt.subplots(1, len(families), figsize=(options.width_in * 0.8 * len(families),
                                                         options.height_in * 1.2), squeeze=False)
    axes = list(axes[0])
    for ax, family in zip(axes, families):
        rows = success[success["family"] == family]
        conditions = list(dict.fromkeys(rows["condition"]))
        for i, condition in enumerate(conditions):
            sub = rows[rows["condition"] == condition]
            values = sub["value"].to_numpy(float)
            mean, low, high = t_interval(values, options.interval)
            ax.bar(i, mean, 0.6, color=_CONDITION_COLOURS.get(condition, "#7f7f7f"), alpha=0.6,
                   label=condition if family == families[0] else None)
            ax.errorbar(i, mean, yerr=[[np.nan_to_num(mean - low)], [np.nan_to_num(high - mean)]], color="black",
                        capsize=4)
            ax.scatter(np.full(values.size, i), values, s=14, color="black", zorder=3)
        ax.set_xticks(range(len(conditions)),
                      [f"{c}\n{_wrapped_name(rows.loc[rows['condition'] == c, 'substrate'].iloc[0])}"
                       for c in conditions], fontsize=8)
        metric = str(rows["metric"].iloc[0])
        better = "higher" if bool(rows["higher_is_better"].iloc[0]) else "lower"
        ax.set_ylabel(f"{metric} ({better} is better)")
        ax.set_title(f"{family}: {rows['task'].iloc[0]}", fontsize=9)
    return _finish(fig, axes, f"Cross-region transfer: success per condition (bar: mean over seeds, "
                              f"{options.interval:.0%} t interval; dots: seeds)", options, synthetic, path)


def connectome_advantage(rows: pd.DataFrame, *, options: FigureOptions, synthetic: bool,
                         path: Path | None = None) -> plt.Figure:
    """Forest plot: per experiment (one panel, its own metric and units) the connectome's paired advantage over
    each matched control; positive = connectome better. Filled markers: interval above zero and Holm-adjusted
    paired t p below 0.05.

    ``rows`` has experiment, control, metric, mean, ci_low, ci_high, holm_p.
    """
    experiments = list(dict.fromkeys(rows["experiment"])) or ["(no matched controls)"]
    heights = [max(1, int((rows["experiment"] == e).sum())) for e in experiments]
    fig, axes = plt.subplots(len(experiments), 1, squeeze=False, gridspec_kw={"height_ratios": heights},
                             figsize=(options.width_in, max(options.height_in, 0.45 * sum(heights) + 1.2 * len(heights))))
    axes = list(axes[:, 0])
    for ax, experiment in zip(axes, experiments):
        sub = rows[rows["experiment"] == experiment]
        y = np.arange(len(sub))[::-1]
        for yi, r in zip(y, sub.itertuples()):
            shown = np.isfinite(r.ci_low) and r.ci_low > 0 and r.holm_p < 0.05
            colour = "#1f77b4" if shown else "#7f7f7f"
            ax.errorbar(r.mean, yi, xerr=[[np.nan_to_num(r.mean - r.ci_low)], [np.nan_to_num(r.ci_high - r.mean)]],
                        fmt="o", color=colour, mfc=colour if shown else "white", capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [f"vs {c}" for c in sub["control"]], fontsize=8)
        metric = sub["metric"].iloc[0] if len(sub) else ""
        ax.set_title(experiment, fontsize=9, loc="left")
        ax.set_xlabel(f"connectome advantage in {metric} (positive = connectome better)", fontsize=8)
    return _finish(fig, axes, f"Connectome vs matched topology controls\n(mean over seeds, {options.interval:.0%} t "
                              "interval; filled: interval > 0 and Holm-adjusted t p < 0.05)", options, synthetic, path)


ARM_COLOURS = {"bptt": "#000000", "tbptt": "#1b9e77", "ccdni": "#d95f02", "fa": "#7570b3", "pal": "#e7298a",
               "gle": "#66a61e"}


def _band(ax, history: pd.DataFrame, column: str, label: str, colour: str, level: float, **style) -> None:
    """Mean of ``column`` per epoch over seeds with its t interval as a band."""
    epochs = np.sort(history["epoch"].unique())
    stats_ = [t_interval(history.loc[history["epoch"] == e, column].to_numpy(), level) for e in epochs]
    mean, low, high = (np.array(v) for v in zip(*stats_))
    if not np.isfinite(mean).any():
        return
    ax.plot(epochs, mean, label=label, color=colour, **style)
    ax.fill_between(epochs, low, high, color=colour, alpha=0.15, linewidth=0)


def arm_learning_curves(history: pd.DataFrame, *, cores: list[str], arms: list[str], options: FigureOptions,
                        synthetic: bool, path: Path | None = None) -> plt.Figure:
    """Validation loss per epoch of every arm (bptt included), one panel per core, mean over seeds with a band."""
    fig, axes = plt.subplots(1, len(cores), figsize=(options.width_in * 0.62 * len(cores) + 1.0,
                                                     options.height_in * 1.25), squeeze=False, sharey=True)
    axes = list(axes[0])
    for ax, core in zip(axes, cores):
        for arm in ("bptt", *arms):
            sub = history[history["model"] == arm_model_name(core, arm)]
            if not sub.empty:
                _band(ax, sub, "val_loss", arm, ARM_COLOURS.get(arm, "#a6761d"), options.interval,
                      linewidth=2.2 if arm == "bptt" else 1.5, marker="o", markersize=3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Epoch")
        ax.set_title(f"core: {core}", fontsize=9)
    axes[0].set_ylabel("Validation loss (task loss, dimensionless)")
    return _finish(fig, axes, f"Learning curves by learning rule (mean over seeds, {options.interval:.0%} band)",
                   options, synthetic, path)


def gradient_fidelity(history: pd.DataFrame, *, core: str, arms: list[str], options: FigureOptions,
                      synthetic: bool, path: Path | None = None) -> plt.Figure:
    """Per epoch, on held-out validation sequences: each arm's W_in update against BPTT's gradient (cosine), the
    feedback matrix against W_out^T (angle, fa/pal), and the arm's adjoint against BPTT's (cosine, ccdni/gle)."""
    panels = [("grad_cosine", "Cosine of W_in update with BPTT gradient"),
              ("feedback_angle_deg", "Angle between feedback and W_out^T (degrees)"),
              ("adjoint_cosine", "Cosine of arm's adjoint with BPTT adjoint")]
    fig, axes = plt.subplots(1, 3, figsize=(options.width_in * 1.9, options.height_in * 1.25))
    axes = list(axes)
    for ax, (column, ylabel) in zip(axes, panels):
        for arm in arms:
            sub = history[history["model"] == arm_model_name(core, arm)]
            if not sub.empty and column in sub and sub[column].notna().any():
                _band(ax, sub, column, arm, ARM_COLOURS.get(arm, "#a6761d"), options.interval, linewidth=1.6,
                      marker="o", markersize=3)
        if column == "feedback_angle_deg":   # 90 degrees: unrelated to W_out^T (where random feedback starts)
            ax.axhline(90.0, color="#7f7f7f", linestyle=":", linewidth=1.0)
            ax.set_ylim(0, 180)
        else:
            ax.axhline(0.0, color="#7f7f7f", linestyle=":", linewidth=1.0)
            ax.set_ylim(-1.05, 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Epoch")
        ax.set_ylabel(ylabel, fontsize=8)
    handles = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
    axes[0].legend(handles.values(), handles.keys(), fontsize=8, frameon=False)
    fig.suptitle(f"Gradient fidelity on `{core}` (held-out validation sequences; mean over seeds, "
                 f"{options.interval:.0%} band)" + ("\nSYNTHETIC substrate: not data from an animal" if synthetic
                                                     else ""), fontsize=10,
                 color="#b00020" if synthetic else "black")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    if path is not None:
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=options.dpi, format="png")
    plt.close(fig)
    return fig
