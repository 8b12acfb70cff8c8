"""Mushroom-body associative task: seeding, episode structure, odour bank, loss, metrics, baseline, config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from connectome_bpu.associative import (
    KNOBS,
    METRIC_COLUMNS,
    AssociativeSpec,
    episode_arrays,
    odour_bank,
    split_arrays,
)
from connectome_bpu.errors import BPUInputError
from connectome_bpu.tasks import SplitDef

DATA_SEED = 12345
SMALL = AssociativeSpec(odours=8, odour_dim=8, per_episode=4, reversals=2, reversal_repeats=2, sparsity=1.0,
                        odour_noise=0.0)


def _split(spec: AssociativeSpec, k: int, count: int, data_seed: int = DATA_SEED) -> dict[str, np.ndarray]:
    split = SplitDef(name=f"s{k}", role="train", k=k, count=count, T=spec.T)
    return split_arrays(spec, split.seed_sequence(data_seed), data_seed, count)


def test_spec_shape_properties_and_defaults():
    spec = AssociativeSpec()
    assert AssociativeSpec.from_config({"name": "mb_associative"}) == spec
    assert AssociativeSpec.from_config({"associative": None}) == spec
    assert (spec.T, spec.input_dim, spec.output_dim, spec.target_dim) == (3 * 6 + 3, 67, 1, 4)
    assert spec.name == "mb_associative" and not spec.is_polar
    assert spec.cache_name == "mb_associative_M64_D64_n6_r3x1_p0.2_s0.03"
    assert AssociativeSpec(sparsity=0.25).cache_name != spec.cache_name
    assert SMALL.T == 16
    knobs = AssociativeSpec.from_config({"associative": {"per_episode": 5, "odour_noise": 0.0}}).knob_values()
    assert tuple(knobs) == KNOBS
    assert all(value.shape == () for value in knobs.values())
    assert knobs["per_episode"] == 5 and knobs["odour_noise"] == 0.0 and knobs["sparsity"] == 0.2


def test_splits_are_deterministic_and_seeded_per_split_and_data_seed():
    first = _split(AssociativeSpec(), k=0, count=32)
    again = _split(AssociativeSpec(), k=0, count=32)
    for key in ("inputs", "targets"):
        assert first[key].dtype == np.float32
        np.testing.assert_array_equal(first[key], again[key])
    other_split = _split(AssociativeSpec(), k=1, count=32)
    assert not np.array_equal(first["inputs"], other_split["inputs"])
    assert not np.array_equal(first["targets"], other_split["targets"])
    seed_sequence = np.random.SeedSequence([DATA_SEED, 0, 21, 0])
    same_episodes = split_arrays(AssociativeSpec(), seed_sequence, DATA_SEED, 32)
    other_bank = split_arrays(AssociativeSpec(), seed_sequence, DATA_SEED + 1, 32)
    assert not np.array_equal(same_episodes["inputs"], other_bank["inputs"])
    # the bank comes from the data seed alone, the episode structure from the split's seed alone
    np.testing.assert_array_equal(same_episodes["targets"], other_bank["targets"])


def test_episode_phase_structure():
    spec, count = SMALL, 200
    n, r, q, D = spec.per_episode, spec.reversals, spec.reversal_repeats, spec.odour_dim
    bank = odour_bank(spec, DATA_SEED)
    inputs, targets = episode_arrays(spec, np.random.default_rng(3), bank, count)
    assert inputs.shape == (count, 16, D + 3) and targets.shape == (count, 16, 4)
    phase_a, phase_b = slice(0, n), slice(n, 2 * n)
    phase_c, phase_d = slice(2 * n, 2 * n + r * q), slice(2 * n + r * q, 3 * n + r * q)

    reward, punishment, query = inputs[..., D], inputs[..., D + 1], inputs[..., D + 2]
    for flag in (reward, punishment, query):
        assert set(np.unique(flag)) <= {0.0, 1.0}
    for teaching in (phase_a, phase_c):
        assert np.all(reward[:, teaching] + punishment[:, teaching] == 1) and np.all(query[:, teaching] == 0)
    for probe in (phase_b, phase_d):
        assert np.all(query[:, probe] == 1) and np.all(reward[:, probe] + punishment[:, probe] == 0)

    # identify each step's odour by its bank row (σ = 0, p = 1: rows are exact and distinct)
    matches = np.all(inputs[:, :, None, :D] == bank[None, None], axis=-1)
    assert np.all(matches.sum(axis=-1) == 1)
    odour = matches.argmax(axis=-1)
    for e in range(count):
        taught = odour[e, phase_a]
        assert len(set(taught)) == n
        assert sorted(odour[e, phase_b]) == sorted(taught) and sorted(odour[e, phase_d]) == sorted(taught)
        initial = dict(zip(taught, punishment[e, phase_a]))
        passes = odour[e, phase_c].reshape(q, r)
        reversed_set = set(passes[0])
        assert len(reversed_set) == r and all(set(p) == reversed_set for p in passes)
        assert all(punishment[e, t] == 1 - initial[odour[e, t]] for t in range(phase_c.start, phase_c.stop))
        assert all(targets[e, t, 0] == initial[odour[e, t]] for t in range(phase_b.start, phase_b.stop))
        for t in range(phase_d.start, phase_d.stop):
            flipped = odour[e, t] in reversed_set
            assert targets[e, t, 0] == (1 - initial[odour[e, t]] if flipped else initial[odour[e, t]])
            assert targets[e, t, 3] == flipped

    steps = np.arange(spec.T)
    in_b = (steps >= phase_b.start) & (steps < phase_b.stop)
    in_d = steps >= phase_d.start
    np.testing.assert_array_equal(targets[..., 1], np.broadcast_to(in_b, (count, spec.T)))
    np.testing.assert_array_equal(targets[..., 2], np.broadcast_to(in_d, (count, spec.T)))
    assert np.all(targets[:, ~(in_b | in_d), 0] == 0) and np.all(targets[:, ~in_d, 3] == 0)
    assert np.all(targets[:, in_d, 3].sum(axis=1) == r)
    assert 0.4 < targets[:, in_b, 0].mean() < 0.6  # fair valence bits


def test_presentation_noise_changes_only_the_odour_features():
    clean_spec = AssociativeSpec(odour_noise=0.0)
    noisy_spec = AssociativeSpec(odour_noise=0.1)
    clean = _split(clean_spec, k=0, count=500)
    noisy = _split(noisy_spec, k=0, count=500)
    D = clean_spec.odour_dim
    np.testing.assert_array_equal(clean["targets"], noisy["targets"])
    np.testing.assert_array_equal(clean["inputs"][..., D:], noisy["inputs"][..., D:])
    noise = noisy["inputs"][..., :D] - clean["inputs"][..., :D]
    assert abs(noise.std() - 0.1) < 0.005 and abs(noise.mean()) < 0.005


def test_odour_bank_is_sparse_unit_norm_and_never_empty():
    spec = AssociativeSpec(odours=2000, odour_dim=64, per_episode=6, sparsity=0.2)
    bank = odour_bank(spec, DATA_SEED)
    assert bank.shape == (2000, 64) and bank.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bank, axis=1), 1.0, atol=1e-5)
    assert abs((bank != 0).sum(axis=1).mean() - 0.2 * 64) < 0.3
    np.testing.assert_array_equal(bank, odour_bank(spec, DATA_SEED))
    assert not np.array_equal(bank, odour_bank(spec, DATA_SEED + 1))

    very_sparse = odour_bank(AssociativeSpec(odours=500, odour_dim=8, per_episode=6, sparsity=1e-3), DATA_SEED)
    nonzero = (very_sparse != 0).sum(axis=1)
    assert nonzero.min() >= 1 and (nonzero == 1).mean() > 0.9
    np.testing.assert_allclose(np.abs(very_sparse).max(axis=1), 1.0, atol=1e-6)  # single entries become ±1


def _bce(logit: float, label: float) -> float:
    return math.log1p(math.exp(logit)) - label * logit


def test_metrics_on_a_hand_made_example():
    # n = 2, r = 1, q = 1: steps 0-1 teach, 2-3 initial probe, 4 reversal, 5-6 final probe
    spec = AssociativeSpec(odours=4, odour_dim=4, per_episode=2, reversals=1, reversal_repeats=1)
    target = np.zeros((2, spec.T, 4), dtype=np.float32)
    # (episode, step): (valence, initial probe, final probe, reversed odour), logit, correct?
    cases = {
        (0, 2): ((0, 1, 0, 0), -2.0, True),
        (0, 3): ((1, 1, 0, 0), -3.0, False),
        (1, 2): ((1, 1, 0, 0), -1.0, False),
        (1, 3): ((0, 1, 0, 0), 0.5, False),
        (0, 5): ((1, 0, 1, 1), 0.0, True),  # logit 0 is sigmoid 0.5: predicts punishment
        (0, 6): ((0, 0, 1, 0), 2.0, False),
        (1, 5): ((1, 0, 1, 0), 4.0, True),
        (1, 6): ((0, 0, 1, 1), -0.5, True),
    }
    pred = np.full((2, spec.T, 1), 50.0)  # teaching-step outputs are never scored
    for (e, t), (channels, logit, _) in cases.items():
        target[e, t] = channels
        pred[e, t, 0] = logit
    metrics = spec.evaluate(pred, target)
    assert list(metrics) == METRIC_COLUMNS
    expected_loss = np.mean([_bce(logit, channels[0]) for channels, logit, _ in cases.values()])
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-12)
    assert metrics["query_accuracy"] == pytest.approx(4 / 8)
    assert metrics["initial_probe_accuracy"] == pytest.approx(1 / 4)
    assert metrics["reversal_probe_accuracy"] == pytest.approx(3 / 4)
    assert metrics["reversed_odour_accuracy"] == pytest.approx(1.0)
    assert all(isinstance(value, float) for value in metrics.values())


def test_a_net_that_ignores_reversal_scores_zero_on_reversed_odours():
    spec = AssociativeSpec()
    target = _split(spec, k=0, count=300)["targets"]
    initial_valence = np.where(target[..., 3] > 0, 1 - target[..., 0], target[..., 0])
    pred = (10.0 * (2.0 * initial_valence - 1.0))[..., None]
    metrics = spec.evaluate(pred, target)
    assert metrics["initial_probe_accuracy"] == 1.0
    assert metrics["reversed_odour_accuracy"] == 0.0
    assert metrics["reversal_probe_accuracy"] == pytest.approx(1 - spec.reversals / spec.per_episode)


def test_loss_sums_over_batches_equal_the_split_mean_and_skip_teaching_steps():
    spec = AssociativeSpec()
    target = _split(spec, k=0, count=37)["targets"]
    pred = np.random.default_rng(0).normal(0.0, 2.0, size=target.shape[:2] + (1,)).astype(np.float32)
    total, count = 0.0, 0
    for part in (slice(0, 20), slice(20, 37)):
        part_sum, part_count = spec.loss_sums(torch.from_numpy(pred[part]), torch.from_numpy(target[part]))
        total, count = total + float(part_sum), count + part_count
    assert count == 37 * 2 * spec.per_episode
    assert total / count == pytest.approx(spec.evaluate(pred, target)["loss"], rel=1e-5)

    logits = torch.from_numpy(pred).requires_grad_()
    spec.loss_sums(logits, torch.from_numpy(target))[0].backward()
    teaching = (target[..., 1] + target[..., 2]) == 0
    assert torch.all(logits.grad[..., 0][torch.from_numpy(teaching)] == 0)
    assert torch.all(logits.grad[..., 0][torch.from_numpy(~teaching)] != 0)

    with pytest.raises(ValueError, match="must be"):
        spec.loss_sums(torch.zeros(2, spec.T, 2), torch.zeros(2, spec.T, 4))
    with pytest.raises(ValueError, match="must be"):
        spec.loss_sums(torch.zeros(2, spec.T, 1), torch.zeros(2, spec.T + 1, 4))
    with pytest.raises(ValueError, match="must be"):
        spec.evaluate(np.zeros((2, spec.T, 1)), np.zeros((2, spec.T, 3)))


def test_mean_predictor_is_at_chance_and_extends_to_other_lengths():
    spec = AssociativeSpec()
    mean_targets = _split(spec, k=0, count=4000)["targets"].astype(np.float64).mean(axis=0)
    test_targets = _split(spec, k=2, count=2000)["targets"]
    outputs = spec.mean_predictor_outputs(mean_targets, 2000, spec.T)
    assert outputs.shape == (2000, spec.T, 1) and outputs.dtype == np.float32 and np.all(np.isfinite(outputs))
    metrics = spec.evaluate(outputs, test_targets)
    for column in METRIC_COLUMNS[1:]:
        assert abs(metrics[column] - 0.5) < 0.05, column
    assert metrics["loss"] == pytest.approx(math.log(2.0), abs=0.01)
    teaching = (mean_targets[:, 1] + mean_targets[:, 2]) == 0
    assert np.all(outputs[0, teaching, 0] == 0)  # no query rate known: probability 0.5

    one_hot = np.zeros((3, 4))
    one_hot[:, 1] = 1.0
    one_hot[2, 0] = 1.0  # last step always punishment: its clipped logit is large but finite
    longer = spec.mean_predictor_outputs(one_hot, 2, 5)[0, :, 0]
    assert np.all(np.isfinite(longer)) and longer[2] > 10
    np.testing.assert_array_equal(longer[2:], np.full(3, longer[2]))
    assert longer[0] < -10
    np.testing.assert_array_equal(spec.mean_predictor_outputs(one_hot, 1, 2)[0, :, 0], longer[:2])


@pytest.mark.parametrize(("knobs", "key"), [
    ({"per_episode": 65}, "task.associative.per_episode"),
    ({"reversals": 7}, "task.associative.reversals"),
    ({"reversals": 0}, "task.associative.reversals"),
    ({"sparsity": 0}, "task.associative.sparsity"),
    ({"sparsity": 1.5}, "task.associative.sparsity"),
    ({"odour_noise": -0.01}, "task.associative.odour_noise"),
    ({"odours": 6.5}, "task.associative.odours"),
    ({"reversal_repeats": 0}, "task.associative.reversal_repeats"),
    ({"per_episode": True}, "task.associative.per_episode"),
    ({"odour_noise": "0.1"}, "task.associative.odour_noise"),
    ({"per_epsiode": 4}, "task.associative has unknown key"),
])
def test_bad_knobs_are_refused_naming_the_key(knobs, key):
    with pytest.raises(BPUInputError, match=key) as error:
        AssociativeSpec.from_config({"associative": knobs})
    assert "expected" in str(error.value)


def test_bad_associative_section_and_episode_count_are_refused():
    with pytest.raises(BPUInputError, match="task.associative is"):
        AssociativeSpec.from_config({"associative": [4]})
    with pytest.raises(BPUInputError, match="episode count is 0"):
        episode_arrays(SMALL, np.random.default_rng(0), odour_bank(SMALL, DATA_SEED), 0)
