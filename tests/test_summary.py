"""``summary.md`` (``connectome_bpu.reports.summary``) on small hand-made metric tables.

The per-seed table is built by hand so that each compared model has a known outcome on the primary
metric: clearly worse than the connectome model, clearly better, indistinguishable, seen on one seed
only, or not run at all. The summary and paired tables are then made by the same functions the workflow
uses, and the tests read the markdown: the headline table comes first, names every model with its kind,
and every verdict is the one its printed interval supports.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from connectome_bpu.metrics import DRIFT_COLUMN, METRIC_COLUMNS, PRIMARY_METRIC
from connectome_bpu.reports.summary import summary_markdown
from connectome_bpu.results import HIGHER_IS_BETTER, interval_verdict, paired_differences, summarise

PRIMARY = "cx_bpu"
TRAIN_T, LONG_T, N_TRAIN, LEVEL = 50, 200, 48, 0.95
SEEDS = [0, 1, 2]
# Offset of each model's primary metric from the connectome's, per seed (None: seed not run).
OFFSETS = {
    PRIMARY: [0.0, 0.0, 0.0],
    "no_recurrence": [0.05, -0.06, 0.01],    # interval spans zero
    "random": [0.50, 0.52, 0.49],            # clearly worse than the connectome
    "random_dale": [0.40, None, None],       # one seed only
    "gru": [-0.30, -0.31, -0.29],            # clearly better than the connectome
    "mean_predictor": [1.00, 1.02, 0.98],
}
MODELS = [PRIMARY, "no_recurrence", "random", "random_dale", "gru", "gru_matched", "mean_predictor"]
KINDS = {"no_recurrence": "topology control", "random": "topology control", "random_dale": "topology control",
         "gru": "baseline (GRU)", "gru_matched": "baseline (GRU)", "mean_predictor": "baseline (trivial)"}
METADATA = {"connectome": "synthetic_cx", "synthetic": True, "primary_matrix": "signed", "N": 480,
            "unsigned_edge_count": 5000, "estimated_K": 3, "k_raw_median": 2.0, "sign_coverage": 1.0,
            "rho_target": 0.95, "pool_counts": {"sensory": 40, "internal": 400, "output": 40}}


def _by_seed(task: str) -> pd.DataFrame:
    """One row per (model, seed, split): the primary metric follows OFFSETS, the rest is seeded noise."""
    primary_metric = PRIMARY_METRIC[task]
    rng = np.random.default_rng(0)
    rows = []
    for model, offsets in OFFSETS.items():
        for seed, offset in zip(SEEDS, offsets):
            if offset is None:
                continue
            for split, T, noise in (("test", TRAIN_T, 0.0), ("test", LONG_T, 0.0), ("test_noise", TRAIN_T, 0.1)):
                row = {"model": model, "seed": seed, "split": split, "T": T, "noise_std": noise, "n_train": N_TRAIN,
                       "trainable_parameter_count": 1000 + len(model)}
                for metric in METRIC_COLUMNS[task]:
                    row[metric] = float(rng.uniform(0.1, 0.9))
                # Long sequences reverse the order, so a table that used them would show other verdicts.
                row[primary_metric] = 1.0 + (offset if T == TRAIN_T else -offset) + 0.01 * seed
                row[DRIFT_COLUMN] = float(rng.uniform(-0.1, 0.1))
                rows.append(row)
    return pd.DataFrame(rows)


def _markdown(task: str = "cx_polar_bump", paired: pd.DataFrame | None = None) -> tuple[str, pd.DataFrame]:
    by_seed = _by_seed(task)
    if paired is None:
        paired = paired_differences(by_seed, PRIMARY, [m for m in MODELS if m != PRIMARY], task, LEVEL)
    text = summary_markdown(metadata=METADATA, substrate="synthetic_cx", task=task, mode="frozen", seeds=SEEDS,
                            n_train=N_TRAIN, train_T=TRAIN_T, models=MODELS, primary=PRIMARY,
                            summary=summarise(by_seed, task, LEVEL), paired=paired, level=LEVEL)
    return text, paired


def _tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of ``text``, each as rows of cells (header and separator rows dropped)."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not all(re.fullmatch(r"-*:?-+:?", cell) for cell in cells):
                current.append(cells)
        else:
            current = None
    return [table[1:] for table in tables]   # drop each header row


def _headline(text: str) -> dict[str, list[str]]:
    return {row[0].strip("`"): row for row in _tables(text)[0]}


def test_primary_metric_is_defined_once_per_task_and_is_one_of_its_columns():
    assert set(PRIMARY_METRIC) == set(METRIC_COLUMNS)
    assert PRIMARY_METRIC == {"cartesian": "position_rmse", "cx_polar_bump": "heading_bump_angular_error",
                              "cx_landmark_bump": "home_bearing_angular_error",
                              "mb_associative": "reversal_probe_accuracy", "optic_flow": "overall_rmse"}
    for task, metric in PRIMARY_METRIC.items():
        assert metric in METRIC_COLUMNS[task]


def test_the_headline_table_comes_first_and_is_about_the_primary_metric():
    text, _ = _markdown()
    first_table = text.index("\n|")
    headline = text.index("## Headline: `heading_bump_angular_error` (rad), clean test at the training length")
    assert headline < first_table < text.index("## Detail")
    assert text.index("SYNTHETIC SUBSTRATE") < headline   # the synthetic warning still leads
    header = text[first_table + 1:].splitlines()[0]
    assert header == ("| compared with | kind | `cx_bpu` mean | its mean | difference [95% interval] | seeds | "
                      "verdict |")
    assert f"T={TRAIN_T}, {N_TRAIN} training sequences" in text[headline:first_table]


def test_the_headline_names_every_model_with_its_kind_controls_first():
    text, _ = _markdown()
    rows = _headline(text)
    assert list(rows) == ["no_recurrence", "random", "random_dale", "gru", "gru_matched", "mean_predictor"]
    assert {model: row[1] for model, row in rows.items()} == KINDS
    assert PRIMARY not in rows
    for model in MODELS:
        assert f"`{model}`" in text


def test_headline_verdicts_and_numbers_come_from_the_paired_intervals():
    text, paired = _markdown()
    rows = _headline(text)
    assert rows["random"][-1] == "connectome better"
    assert rows["mean_predictor"][-1] == "connectome better"
    assert rows["gru"][-1] == "control better"
    assert rows["no_recurrence"][-1] == "no clear difference"
    assert rows["random_dale"][-1] == "single seed"
    assert rows["random_dale"][-2] == "1 of 3 seeds; seeds 1, 2 missing for `random_dale`"
    assert rows["gru_matched"][-1].startswith("not compared") and rows["gru_matched"][-3] == "n/a"

    at_train = paired[(paired["split"] == "test") & (paired["T"] == TRAIN_T)
                      & (paired["metric"] == PRIMARY_METRIC["cx_polar_bump"])].set_index("control")
    for model in ("no_recurrence", "random", "gru", "mean_predictor"):
        row = at_train.loc[model]
        assert rows[model][-1] == interval_verdict(row["metric"], row["ci_low"], row["ci_high"], int(row["n_seeds"]))
        assert rows[model][4] == f"{row['mean_difference']:.4g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
        assert rows[model][5] == "3"
    # Means at the training length: the connectome's is 1.01 (seeds 0-2 add 0, 0.01, 0.02).
    assert rows["random"][2] == "1.01" and rows["random"][3] == f"{1.01 + np.mean([0.50, 0.52, 0.49]):.4g}"


def test_a_stored_verdict_label_is_ignored_in_favour_of_the_interval():
    _, paired = _markdown()
    tampered = paired.assign(verdict="connectome better")
    text, _ = _markdown(paired=tampered)
    rows = _headline(text)
    assert rows["gru"][-1] == "control better" and rows["no_recurrence"][-1] == "no clear difference"
    assert text == _markdown(paired=paired.drop(columns="verdict"))[0]


def test_detail_is_one_row_per_model_at_the_training_length_and_points_to_the_csv():
    text, paired = _markdown()
    detail = text[text.index("## Detail"):]
    assert "paired_differences.csv" in detail
    matrix_heading = detail.index("### Paired differences of every metric: `cx_bpu` minus each model "
                                  f"(clean test, T={TRAIN_T})")
    matrix = _tables(detail[matrix_heading:])[0]
    compared = [m for m in MODELS if m != PRIMARY and m != "gru_matched"]   # gru_matched has no pairs
    assert [row[0].strip("`") for row in matrix] == compared
    metrics = METRIC_COLUMNS["cx_polar_bump"] + [DRIFT_COLUMN]
    assert all(len(row) == 1 + len(metrics) for row in matrix)
    # Far fewer rows than one per (model, metric) pair, and only the training length's values.
    assert len(matrix) < len(paired[(paired["split"] == "test") & (paired["T"] == TRAIN_T)]) / 5
    column = 1 + metrics.index("heading_bump_angular_error")
    cells = {row[0].strip("`"): row[column] for row in matrix}
    assert cells["random"].endswith(" conn.") and cells["gru"].endswith(" other")
    assert cells["no_recurrence"].endswith(" unclear") and cells["random_dale"].endswith(" 1 seed")
    assert float(cells["random"].split()[0]) < 0 < float(cells["gru"].split()[0])
    table_rows = sum(len(table) for table in _tables(text))
    assert table_rows < 40   # the old summary printed one row per (model, metric): ~90 for the default run


def test_cartesian_leads_with_position_rmse():
    text, _ = _markdown("cartesian")
    assert "## Headline: `position_rmse` (world units)" in text
    rows = _headline(text)
    assert rows["random"][-1] == "connectome better" and rows["gru"][-1] == "control better"
    assert "- Mean `position_rmse` better than `mean_predictor`" in text


@pytest.mark.parametrize("task", sorted(METRIC_COLUMNS))
def test_without_any_pair_the_headline_still_lists_every_model(task):
    text, paired = _markdown(task, paired=pd.DataFrame(columns=["primary", "control", "split", "T", "noise_std",
                                                                "n_train", "metric", "n_seeds", "mean_difference",
                                                                "ci_low", "ci_high", "verdict"]))
    rows = _headline(text)
    assert set(rows) == set(KINDS) and all(row[-1].startswith("not compared") for row in rows.values())
    assert "No paired comparison is available" in text


# --- fewer seeds than the run has: said in the table, never averaged silently ------------------------------

def _markdown_of(by_seed: pd.DataFrame, task: str = "cx_polar_bump", *, via_csv=None) -> str:
    paired = paired_differences(by_seed, PRIMARY, [m for m in MODELS if m != PRIMARY], task, LEVEL)
    summary = summarise(by_seed, task, LEVEL)
    if via_csv is not None:   # as the workflow does: the summary rule reads the aggregated CSVs
        summary.to_csv(via_csv / "summary.csv", index=False)
        paired.to_csv(via_csv / "paired.csv", index=False)
        summary, paired = pd.read_csv(via_csv / "summary.csv"), pd.read_csv(via_csv / "paired.csv")
    return summary_markdown(metadata=METADATA, substrate="synthetic_cx", task=task, mode="frozen", seeds=SEEDS,
                            n_train=N_TRAIN, train_T=TRAIN_T, models=MODELS, primary=PRIMARY, summary=summary,
                            paired=paired, level=LEVEL)


def _drop(by_seed: pd.DataFrame, model: str, seed: int) -> pd.DataFrame:
    return by_seed[~((by_seed["model"] == model) & (by_seed["seed"] == seed))].reset_index(drop=True)


def _set_nan(by_seed: pd.DataFrame, model: str, seed: int, metric: str) -> pd.DataFrame:
    by_seed = by_seed.copy()
    by_seed.loc[(by_seed["model"] == model) & (by_seed["seed"] == seed), metric] = np.nan
    return by_seed


def _interval(cell: str) -> tuple[float, float, float] | None:
    match = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cell)
    return tuple(float(v) for v in match.groups()) if match else None


def test_every_seed_paired_says_just_the_count():
    rows = _headline(_markdown()[0])
    assert {model: rows[model][5] for model in ("no_recurrence", "random", "gru", "mean_predictor")} == \
        dict.fromkeys(("no_recurrence", "random", "gru", "mean_predictor"), "3")


@pytest.mark.parametrize("csv", [False, True])
def test_a_control_missing_a_seed_is_named_in_the_headline(tmp_path, csv):
    by_seed = _drop(_by_seed("cx_polar_bump"), "random", 2)
    text = _markdown_of(by_seed, via_csv=tmp_path if csv else None)
    rows = _headline(text)
    assert rows["random"][5] == "2 of 3 seeds; seed 2 missing for `random`"
    # Two pairs still give an interval: differences -0.50, -0.52, half-width 12.706 * 0.01414 / sqrt(2) = 0.1271.
    assert _interval(rows["random"][4]) == pytest.approx((-0.51, -0.51 - 0.1271, -0.51 + 0.1271), abs=2e-4)
    assert rows["random"][-1] == "connectome better"
    # The other comparisons keep all three seeds.
    assert rows["gru"][5] == "3" and rows["no_recurrence"][5] == "3"
    # The detail table says random's means are over two of the three seeds.
    detail = {row[0]: row for row in _tables(text[text.index("### Every metric"):])[0]}
    assert detail["random"][2] == "2 of 3" and detail[PRIMARY][2] == "3"


def test_a_primary_missing_a_seed_is_named_in_every_comparison():
    rows = _headline(_markdown_of(_drop(_by_seed("cx_polar_bump"), PRIMARY, 1)))
    for model in ("no_recurrence", "random", "gru", "mean_predictor"):
        assert rows[model][5] == f"2 of 3 seeds; seed 1 missing for `{PRIMARY}`"
    assert rows["random_dale"][5] == (f"1 of 3 seeds; seed 1 missing for both `{PRIMARY}` and `random_dale`; "
                                      "seed 2 missing for `random_dale`")


def test_a_non_finite_metric_is_named_in_the_headline_and_the_detail():
    metric = PRIMARY_METRIC["cx_polar_bump"]
    by_seed = _set_nan(_by_seed("cx_polar_bump"), "gru", 0, metric)
    text = _markdown_of(by_seed)
    rows = _headline(text)
    assert rows["gru"][5] == "2 of 3 seeds; seed 0 non-finite"
    # Its mean is over the two finite seeds (offsets -0.31, -0.29 plus 0.01 * seed), and says so.
    assert rows["gru"][3] == f"{np.mean([1.0 - 0.31 + 0.01, 1.0 - 0.29 + 0.02]):.4g}"
    detail = {row[0]: row for row in _tables(text[text.index("### Every metric"):])[0]}
    column = 3 + METRIC_COLUMNS["cx_polar_bump"].index(metric)
    assert detail["gru"][column].endswith("(2 of 3 seeds)") and detail["gru"][2] == "3"
    assert not detail["random"][column].endswith("seeds)")
    # The detail matrix marks the comparison that used fewer seeds.
    matrix_at = text.index("### Paired differences of every metric")
    matrix = {row[0].strip("`"): row for row in _tables(text[matrix_at:])[0]}
    cell = matrix["gru"][1 + (METRIC_COLUMNS["cx_polar_bump"] + [DRIFT_COLUMN]).index(metric)]
    assert cell.endswith("other (2 of 3 seeds)")


def test_fewer_than_two_finite_pairs_never_name_a_side():
    metric = PRIMARY_METRIC["cx_polar_bump"]
    by_seed = _set_nan(_drop(_by_seed("cx_polar_bump"), "random", 2), "random", 1, metric)
    rows = _headline(_markdown_of(by_seed))
    assert rows["random"][5] == "1 of 3 seeds; seed 1 non-finite; seed 2 missing for `random`"
    assert rows["random"][-1] == "single seed"
    for seed in (0, 1, 2):
        by_seed = _set_nan(by_seed, "gru", seed, metric)
    rows = _headline(_markdown_of(by_seed))
    assert rows["gru"][5] == "0 of 3 seeds; seeds 0, 1, 2 non-finite"
    assert rows["gru"][-1] == "no pairs" and rows["gru"][4] == "n/a"


@pytest.mark.parametrize("task", sorted(METRIC_COLUMNS))
def test_every_headline_verdict_agrees_with_its_printed_interval(task):
    metric = PRIMARY_METRIC[task]
    by_seed = _set_nan(_drop(_by_seed(task), "random", 2), "gru", 0, metric)
    for text in (_markdown(task)[0], _markdown_of(by_seed, task)):
        for model, row in _headline(text).items():
            interval, seeds, verdict = _interval(row[4]), row[5], row[-1]
            n_pairs = int(seeds.split()[0]) if seeds != "n/a" and not verdict.startswith("not compared") else 0
            if interval is None or n_pairs < 2:
                assert verdict in ("single seed", "no pairs") or verdict.startswith("not compared"), model
                continue
            _, low, high = interval
            if low <= 0 <= high:
                assert verdict == "no clear difference", model
            else:   # an interval on the better side of zero (below for errors, above for accuracies) favours the
                better_below = metric not in HIGHER_IS_BETTER   # connectome
                assert verdict == ("connectome better" if (high < 0) == better_below else "control better"), model
