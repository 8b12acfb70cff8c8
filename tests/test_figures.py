"""The figure functions of ``connectome_bpu.figures`` on small hand-made tables, read back as artists.

Each function returns its matplotlib Figure (and writes the PNG only when given a path), so these
tests inspect what is drawn: axis labels with units, one curve and one legend entry per model, error
bars or bands equal to the t interval worked out here by hand (t_{0.975,2} = 4.303 for three seeds),
no interval for a single seed, and the SYNTHETIC mark exactly when the substrate is synthetic.
"""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from connectome_bpu import figure_names, figures  # noqa: E402
from connectome_bpu.metrics import DRIFT_COLUMN, METRIC_COLUMNS  # noqa: E402
from connectome_bpu.results import summarise  # noqa: E402

TASK = "cx_polar_bump"
OPTIONS = figures.FigureOptions(dpi=40, width_in=4.0, height_in=3.0, interval=0.95)
SEEDS = [0, 1, 2]
# Each model's error at T=50 and its parameter count; error = BASE * T / 50 + 0.1 * seed (+ noise).
BASE = {"cx_bpu": 0.5, "random": 0.8, "mean_predictor": 1.5}
PARAMS = {"cx_bpu": 1200, "random": 1200, "mean_predictor": 0}
MODELS = ["cx_bpu", "random", "random_dale", "mean_predictor"]   # random_dale: one seed only
HALF_3 = 4.303 * 0.1 / math.sqrt(3)    # t_{0.975,2} * sd / sqrt(n), sd of (0, 0.1, 0.2) = 0.1
UNIT = re.compile(r"\((rad|world units|steps|input units|task loss, dimensionless)\)")


def _by_seed() -> pd.DataFrame:
    rows = []
    models = {**BASE, "random_dale": 0.9}
    for model, base in models.items():
        for seed in ([0] if model == "random_dale" else SEEDS):
            cases = [("test", T, 0.0, 48) for T in (50, 100, 200)] + [("test_noise", 50, 0.1, 48),
                                                                       ("test_noise", 50, 0.2, 48),
                                                                       ("test", 50, 0.0, 12)]
            for split, T, noise, n_train in cases:
                value = base * T / 50 + 0.1 * seed + noise + (0.3 if n_train == 12 else 0.0)
                row = {"seed": seed, "model": model, "split": split, "T": T, "noise_std": noise, "n_train": n_train,
                       "trainable_parameter_count": PARAMS.get(model, 1200), DRIFT_COLUMN: 0.0}
                row.update(dict.fromkeys(METRIC_COLUMNS[TASK], value))
                rows.append(row)
    return pd.DataFrame(rows)


def _summary(n_train: int | None = 48) -> pd.DataFrame:
    """The summary over seeds; by default at the full train size only, as metrics_by_seed.csv holds it."""
    table = summarise(_by_seed(), TASK, OPTIONS.interval)
    return table if n_train is None else table[table["n_train"] == n_train]


def _legend(fig) -> list[str]:
    assert len(fig.legends) == 1
    return [text.get_text() for text in fig.legends[0].get_texts()]


def _bars(ax) -> dict[str, ErrorbarContainer]:
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    return {c.get_label(): c for c in containers}


def _bar_ranges(container: ErrorbarContainer) -> list[tuple[float, float]]:
    """(low, high) of each drawn error bar; an absent interval is drawn with zero length."""
    segments = container.lines[2][0].get_segments()
    return [(float(seg[0][1]), float(seg[1][1])) for seg in segments]


def _error_vs_T(synthetic: bool = True, path=None):
    return figures.error_vs(_summary(), task=TASK, split="test", x="T", xlabel="Sequence length T (steps)",
                            title="Path-integration error vs sequence length", models=MODELS, options=OPTIONS,
                            synthetic=synthetic, path=path)


def test_error_vs_length_has_labelled_axes_one_bar_series_per_model_and_the_intervals():
    fig = _error_vs_T(synthetic=False)
    axes = fig.axes
    assert len(axes) == 2
    assert [ax.get_ylabel() for ax in axes] == ["Heading error (rad)", "Home-distance RMSE (world units)"]
    assert all(ax.get_xlabel() == "Sequence length T (steps)" and UNIT.search(ax.get_xlabel()) for ax in axes)
    labels = [f"{m} ({PARAMS.get(m, 1200):,} params)" for m in MODELS]
    assert _legend(fig) == labels
    for ax in axes:
        bars = _bars(ax)
        assert list(bars) == labels                      # one error-bar series per model, in run order
        for model in ("cx_bpu", "random", "mean_predictor"):
            container = bars[f"{model} ({PARAMS[model]:,} params)"]
            means = container.lines[0].get_ydata()
            expected = [BASE[model] * T / 50 + 0.1 for T in (50, 100, 200)]   # mean of seeds 0, 1, 2
            assert means == pytest.approx(expected)
            for (low, high), mean in zip(_bar_ranges(container), expected):
                assert (mean - low, high - mean) == pytest.approx((HALF_3, HALF_3), rel=3e-4)
        # A single seed has no interval: its bars have zero length, never an invented width.
        single = bars["random_dale (1,200 params)"]
        assert all(low == high for low, high in _bar_ranges(single))
        assert sorted(ax.get_xticks()) == [50, 100, 200]
    assert "SYNTHETIC" not in fig.get_suptitle() and "95% t interval" in fig.get_suptitle()


def test_error_vs_noise_names_the_length_and_the_noise_unit():
    rows = _summary()
    fig = figures.error_vs(rows, task=TASK, split="test_noise", x="noise_std",
                           xlabel="Input noise standard deviation (input units)", title="Noise robustness",
                           models=MODELS, options=OPTIONS, synthetic=True)
    for ax in fig.axes:
        assert ax.get_ylabel().endswith(" at T=50") and UNIT.search(ax.get_ylabel())
        assert UNIT.search(ax.get_xlabel())
        assert len(_bars(ax)) == len(MODELS)
        means = _bars(ax)["cx_bpu (1,200 params)"].lines[0].get_ydata()
        assert means == pytest.approx([0.5 + 0.1 + 0.1, 0.5 + 0.1 + 0.2])


def test_the_synthetic_mark_appears_exactly_when_synthetic_and_the_png_is_written(tmp_path):
    marked = _error_vs_T(synthetic=True, path=tmp_path / "figure.png")
    assert "SYNTHETIC substrate" in marked.get_suptitle()
    assert (tmp_path / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SYNTHETIC" not in _error_vs_T(synthetic=False).get_suptitle()


def _history() -> pd.DataFrame:
    rows = []
    for model, base in (("cx_bpu", 1.0), ("random", 2.0)):
        for seed in SEEDS:
            for epoch in (1, 2, 3):
                loss = base / epoch + 0.1 * seed
                rows.append({"seed": seed, "model": model, "n_train": 48, "epoch": epoch, "train_loss": loss,
                             "val_loss": loss + 0.5, "best_val_loss": loss + 0.5, "patience_wait": 0})
    return pd.DataFrame(rows)


def test_loss_curve_draws_one_line_and_one_band_per_model():
    fig = figures.loss_curve(_history(), models=["cx_bpu", "random", "gru"], options=OPTIONS, synthetic=True)
    assert _legend(fig) == ["cx_bpu", "random"]            # gru has no history: no entry
    assert "SYNTHETIC" in fig.get_suptitle()
    for ax, column, offset in zip(fig.axes, ("Training", "Validation"), (0.0, 0.5)):
        assert ax.get_xlabel() == "Epoch"
        assert ax.get_ylabel() == f"{column} loss (task loss, dimensionless)"
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert list(lines) == ["cx_bpu", "random"]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2
        for (model, base), band in zip((("cx_bpu", 1.0), ("random", 2.0)), bands):
            expected = [base / e + 0.1 + offset for e in (1, 2, 3)]
            assert list(lines[model].get_xdata()) == [1, 2, 3]
            assert lines[model].get_ydata() == pytest.approx(expected)
            ys = band.get_paths()[0].vertices[:, 1]
            assert ys.max() == pytest.approx(expected[0] + HALF_3, rel=3e-4)
            assert ys.min() == pytest.approx(expected[-1] - HALF_3, rel=3e-4)


def test_sample_efficiency_has_a_log_count_axis_and_one_series_per_model():
    fig = figures.sample_efficiency(_summary(n_train=None), task=TASK, T=50, models=["cx_bpu", "random"],
                                    options=OPTIONS, synthetic=False)
    assert _legend(fig) == ["cx_bpu", "random"]
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert ax.get_xlabel().startswith("Training sequences")
        assert ax.get_ylabel().endswith(" at T=50") and UNIT.search(ax.get_ylabel())
        bars = _bars(ax)
        assert list(bars) == ["cx_bpu", "random"]
        assert bars["cx_bpu"].lines[0].get_ydata() == pytest.approx([0.5 + 0.1 + 0.3, 0.5 + 0.1])
        for low, high in _bar_ranges(bars["random"]):
            assert high - low == pytest.approx(2 * HALF_3, rel=3e-4)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["12", "48"]


def test_accuracy_by_phase_draws_mean_bars_with_seed_dots_and_a_chance_line():
    rows = [{"model": model, "seed": seed, "split": "test", "initial_probe_accuracy": 0.6 + 0.1 * seed,
             "reversal_probe_accuracy": 0.5, "reversed_odour_accuracy": 0.2 * seed}
            for model in ("connectome_bpu", "random") for seed in (0, 1, 2)]
    fig = figures.accuracy_by_phase(pd.DataFrame(rows), models=["connectome_bpu", "random", "absent"],
                                    options=figures.FigureOptions(), synthetic=False)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if not math.isnan(p.get_height()))
    assert heights == sorted([0.7, 0.5, 0.2] * 2)          # one bar per (model, phase), at the seed mean
    assert [t.get_text() for t in ax.get_xticklabels()] == ["connectome_bpu", "random"]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(dots) == 6 and all(len(c.get_offsets()) == 3 for c in dots)                  # seed dots
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in ax.lines)                     # chance
    assert "chance 0.5" in ax.get_ylabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [p for _, p in figures.ACCURACY_PHASES]


def test_cross_region_figure_has_one_panel_per_family_and_the_metric_direction():
    rows = [{"family": family, "condition": condition, "substrate": f"s_{condition}", "task": task, "seed": seed,
             "metric": metric, "value": value + seed, "higher_is_better": higher}
            for family, task, metric, higher in (("associative", "mb_associative", "reversal_probe_accuracy", True),
                                                 ("path", "cx_polar_bump", "heading_bump_angular_error", False))
            for condition, value in (("matched", 1.0), ("mismatched", 2.0)) for seed in (0, 1)]
    fig = figures.cross_region_success(pd.DataFrame(rows), options=figures.FigureOptions(), synthetic=True)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "reversal_probe_accuracy (higher is better)"
    assert fig.axes[1].get_ylabel() == "heading_bump_angular_error (lower is better)"
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["matched\ns_matched", "mismatched\ns_mismatched"]
    assert sorted(p.get_height() for p in fig.axes[0].patches) == [1.5, 2.5]
    assert "SYNTHETIC" in fig.get_suptitle()


def test_every_task_has_its_figures_and_sample_efficiency_panels():
    from connectome_bpu.tasks import TASK_NAMES

    assert set(figures.PANELS) == set(TASK_NAMES)
    assert figure_names.figures_for("optic_flow") == figure_names.OPTIC_FLOW_FIGURES
    assert set(figure_names.OPTIC_FLOW_FIGURES) <= set(figure_names.FIGURES)


def test_velocity_traces_draw_truth_and_the_chosen_models_per_component():
    import numpy as np

    target = np.zeros((4, 5, 3), dtype=np.float32)
    target[:, :, 0] = 0.2
    models = ["connectome_bpu", "random_sparse", "random", "degree_shuffle", "gru_matched", "mean_predictor"]
    examples = {m: {"output__test_medium": target + 0.01 * i, "target__test_medium": target}
                for i, m in enumerate(models)}
    fig = figures.velocity_traces(examples, split="test_medium", seed=0, models=models, options=OPTIONS,
                                  synthetic=False)
    axes = fig.axes
    assert len(axes) == 3 * figures.TRACE_EPISODES
    assert [axes[i * figures.TRACE_EPISODES].get_ylabel() for i in range(3)] == [
        "yaw (rad/frame)", "forward (units/frame)", "lateral (units/frame)"]
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    # the connectome, the next two models of the run and the two baselines; degree_shuffle is left out
    assert labels == ["true", "connectome_bpu", "random_sparse", "random", "gru_matched", "mean_predictor"]
    truth = axes[0].get_lines()[0]
    assert list(truth.get_ydata()) == pytest.approx([0.2] * 5)
    scored = axes[0].get_lines()[1]           # the connectome from frame 1 on; frame 0 drawn apart, hollow
    assert list(scored.get_xdata()) == [1, 2, 3, 4]


def test_error_by_preset_puts_presets_in_order_with_seed_intervals():
    rows = []
    for model, base in (("connectome_bpu", 0.18), ("random_sparse", 0.19)):
        for label, shift in (("test_easy", 0.0), ("test", 0.01), ("test_hard", 0.02)):
            rows += [{"model": model, "split": label, "seed": s, "overall_rmse": base + shift + 0.1 * s}
                     for s in SEEDS]
    fig = figures.error_by_preset(pd.DataFrame(rows), presets=[("test_easy", "easy"), ("test", "medium"),
                                                               ("test_hard", "hard")],
                                  metric="overall_rmse", ylabel="Test RMSE", models=["connectome_bpu", "random_sparse"],
                                  options=OPTIONS, synthetic=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["easy", "medium", "hard"]
    assert "trained on medium" in ax.get_xlabel()
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    line, _, (vertical,) = bars[0].lines
    assert list(line.get_ydata()) == pytest.approx([0.28, 0.29, 0.30])
    segments = vertical.get_segments()
    assert segments[0][1][1] - segments[0][0][1] == pytest.approx(2 * HALF_3, rel=1e-3)
    assert "SYNTHETIC" in fig._suptitle.get_text()


def test_long_substrate_names_wrap_at_hyphens_for_tick_labels():
    name = "synthetic_cx-sized-synthetic_mb-0f5c4b01-s0"
    wrapped = figures._wrapped_name(name)
    assert wrapped.replace("\n", "") == name and wrapped.count("\n") == 2
    assert all(len(line) <= 22 for line in wrapped.splitlines())
    assert figures._wrapped_name("synthetic_cx") == "synthetic_cx"
