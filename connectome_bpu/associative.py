"""Mushroom-body associative learning with reversal: the odour–valence task family.

The mushroom body is the insect's associative memory, so a connectome core built from it should be
tested on what it evolved for: binding an arbitrary sparse odour code to reward or punishment within
an episode, recalling it from the odour alone, and *overwriting* some of those bindings when the
contingency reverses. Reversal is the discriminating part: a network that only learns the base rate
or never updates a stored binding fails ``reversed_odour_accuracy``, however well it recalls.

Episode layout (T = 3n + r·q steps, one odour presented at every step; input width D + 3 = odour
features, reward flag, punishment flag, query flag):

* A, teaching (n steps): every odour once, with the flag of its initial valence (0 = reward, 1 = punishment);
* B, initial probe (n steps): every odour once with the query flag; target = initial valence;
* C, reversal teaching (r·q steps): q passes over the reversed odours, with the flag of their new valence;
* D, final probe (n steps): every odour once with the query flag; target = final valence.

Each phase visits its odours in a fresh random order, so position never gives the answer away.
Odour codes come from a bank shared by every split of a data seed (splits differ in which odours an
episode draws and how they are paired, not in what an odour looks like), and every presentation adds
fresh Gaussian noise, so a network must match noisy codes rather than memorise exact vectors.

torch is imported inside ``loss_sums`` only: the rule that writes split files needs numpy alone,
and its environment need not carry torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import BPUInputError
from .task_knobs import is_integer, is_number, section_knobs

if TYPE_CHECKING:
    import torch

TASK_NAME = "mb_associative"
TARGET_CHANNELS = ("valence", "initial_probe", "final_probe", "reversed_probe")
METRIC_COLUMNS = ["loss", "query_accuracy", "initial_probe_accuracy", "reversal_probe_accuracy",
                  "reversed_odour_accuracy"]
PRIMARY_METRIC = "reversal_probe_accuracy"
KNOBS = ("odours", "odour_dim", "per_episode", "reversals", "reversal_repeats", "sparsity", "odour_noise")

CONFIG_KEY = "task.associative"
# Second entry of the odour bank's SeedSequence: keeps the bank's stream apart from every split's
# ``[data_seed, k, T, noise]`` stream even when k happens to equal it.
BANK_SEED_TAG = 7777
# Mean-predictor probabilities are clipped here before the logit, so every logit is finite.
PROBABILITY_CLIP = 1e-6


@dataclass(frozen=True)
class AssociativeSpec:
    """The task's knobs: bank size M, code width D, n odours per episode, r reversed q times, sparsity, noise."""

    odours: int = 64
    odour_dim: int = 64
    per_episode: int = 6
    reversals: int = 3
    reversal_repeats: int = 1
    sparsity: float = 0.2
    odour_noise: float = 0.03
    name: ClassVar[str] = TASK_NAME

    def __post_init__(self) -> None:
        for key in ("odours", "odour_dim", "reversal_repeats"):
            value = getattr(self, key)
            if not (is_integer(value) and value >= 1):
                raise BPUInputError(f"{CONFIG_KEY}.{key} is {value!r}; expected an integer >= 1")
        n = self.per_episode
        if not (is_integer(n) and 1 <= n <= self.odours):
            raise BPUInputError(f"{CONFIG_KEY}.per_episode is {n!r}; expected an integer between 1 and "
                                f"{CONFIG_KEY}.odours ({self.odours})")
        if not (is_integer(self.reversals) and 1 <= self.reversals <= n):
            raise BPUInputError(f"{CONFIG_KEY}.reversals is {self.reversals!r}; expected an integer between 1 "
                                f"and {CONFIG_KEY}.per_episode ({n})")
        if not (is_number(self.sparsity) and 0 < self.sparsity <= 1):
            raise BPUInputError(f"{CONFIG_KEY}.sparsity is {self.sparsity!r}; expected a number in (0, 1]")
        if not (is_number(self.odour_noise) and self.odour_noise >= 0):
            raise BPUInputError(f"{CONFIG_KEY}.odour_noise is {self.odour_noise!r}; expected a finite number >= 0")

    @classmethod
    def from_config(cls, task_cfg: Mapping[str, Any]) -> AssociativeSpec:
        """Build from ``config["task"]``; missing knobs take their defaults, unknown ones are refused
        (a misspelt knob would otherwise silently run the default task)."""
        return cls(**section_knobs(task_cfg, "associative", KNOBS))

    @property
    def T(self) -> int:
        return 3 * self.per_episode + self.reversals * self.reversal_repeats

    @property
    def input_dim(self) -> int:
        return self.odour_dim + 3

    @property
    def output_dim(self) -> int:
        return 1

    @property
    def target_dim(self) -> int:
        return len(TARGET_CHANNELS)

    @property
    def is_polar(self) -> bool:
        return False

    @property
    def cache_name(self) -> str:
        """Directory name of this variant's split files; it names every knob that changes their content
        (floats by their shortest exact repr, so two distinct values never share a directory)."""
        return (f"{TASK_NAME}_M{self.odours}_D{self.odour_dim}_n{self.per_episode}_r{self.reversals}"
                f"x{self.reversal_repeats}_p{float(self.sparsity)!r}_s{float(self.odour_noise)!r}")

    def knob_values(self) -> dict[str, np.ndarray]:
        """Every knob as a 0-d array (int64 / float64, so a loaded file compares exactly), keyed as ``KNOBS``."""
        return {key: np.array(getattr(self, key), dtype=np.float64 if key in ("sparsity", "odour_noise")
                              else np.int64) for key in KNOBS}

    def loss_sums(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        """``(Σ BCE over query steps, number of query steps)``: summing both over the batches of a split and
        dividing gives the split's mean BCE whatever the batch sizes. Teaching steps carry no loss (and no
        gradient): their output is not asked for."""
        import torch

        _check_shapes(pred.shape, target.shape)
        query = (target[..., 1] + target[..., 2]) > 0
        bce = torch.nn.functional.binary_cross_entropy_with_logits(pred[..., 0], target[..., 0], reduction="none")
        return torch.where(query, bce, torch.zeros_like(bce)).sum(), int(query.sum())

    def evaluate(self, pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """All metrics of one split from raw logits, in float64, keyed and ordered as ``METRIC_COLUMNS``.

        A step predicts punishment when its logit is >= 0 (sigmoid >= 0.5). An accuracy over an empty
        set of steps is NaN (undefined, not 0).
        """
        pred = np.asarray(pred, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        _check_shapes(pred.shape, target.shape)
        logits, valence = pred[..., 0], target[..., 0]
        initial, final, reversed_ = (target[..., channel] > 0 for channel in (1, 2, 3))
        query = initial | final
        correct = (logits >= 0) == (valence >= 0.5)
        bce = np.logaddexp(0.0, logits) - valence * logits
        return {
            "loss": _masked_mean(bce, query),
            "query_accuracy": _masked_mean(correct, query),
            "initial_probe_accuracy": _masked_mean(correct, initial),
            "reversal_probe_accuracy": _masked_mean(correct, final),
            "reversed_odour_accuracy": _masked_mean(correct, reversed_),
        }

    def mean_predictor_outputs(self, mean_targets: np.ndarray, count: int, T: int) -> np.ndarray:
        """Logits (count, T, 1) float32 of the baseline that knows the per-step punishment rate of the
        train split's query steps and nothing about the episode at hand; a model must beat it to have
        associated anything. Non-query steps get logit 0. Beyond the train length the last step is
        repeated; a shorter split truncates.
        """
        means = np.asarray(mean_targets, dtype=np.float64)
        if means.ndim != 2 or means.shape[1] != self.target_dim or means.shape[0] < 1:
            raise ValueError(f"{TASK_NAME}: mean targets must be (T >= 1, {self.target_dim}); got {means.shape}")
        means = means[np.minimum(np.arange(T), means.shape[0] - 1)]
        query_rate = means[:, 1] + means[:, 2]
        rate = np.full(T, 0.5)
        np.divide(means[:, 0], query_rate, out=rate, where=query_rate > 0)
        rate = np.clip(rate, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
        logits = (np.log(rate) - np.log1p(-rate)).astype(np.float32)
        return np.ascontiguousarray(np.broadcast_to(logits[None, :, None], (count, T, 1)))


def _check_shapes(pred_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
    pred_shape, target_shape = tuple(pred_shape), tuple(target_shape)
    if (len(pred_shape) != 3 or len(target_shape) != 3 or pred_shape[:2] != target_shape[:2]
            or pred_shape[2] != 1 or target_shape[2] != len(TARGET_CHANNELS)):
        raise ValueError(f"{TASK_NAME}: predictions {pred_shape} and targets {target_shape} must be "
                         f"(B, T, 1) and (B, T, {len(TARGET_CHANNELS)})")


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean(values[mask])) if mask.any() else float("nan")


# --------------------------------------------------------------------------------------- generation


def odour_bank(spec: AssociativeSpec, data_seed: int) -> np.ndarray:
    """The M odour codes (M, D) float32 of a data seed: sparse, unit L2 norm, never all zero.

    Draw order from ``SeedSequence([data_seed, 7777])``: standard normals (M, D) float32, then uniforms
    (M, D) (an entry survives when its uniform is < p), then, only for rows left all zero, one column each
    that gets 1.0. Sparse codes mimic Kenyon-cell odour responses; the forced entry keeps every odour
    presentable. Very small p·D makes identical rows likely (two rows whose only entry is the same
    column), so such settings make some odours indistinguishable.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(data_seed), BANK_SEED_TAG]))
    shape = (spec.odours, spec.odour_dim)
    bank = rng.standard_normal(shape, dtype=np.float32)
    bank[rng.random(shape) >= spec.sparsity] = 0.0
    empty = np.flatnonzero(~bank.any(axis=1))
    bank[empty, rng.integers(0, spec.odour_dim, size=empty.size)] = 1.0
    bank /= np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), np.float32(1e-6))
    return bank


def _permutations(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> np.ndarray:
    """Independent uniform permutations of range(k) along the last axis: argsort of uniform keys."""
    return np.argsort(rng.random(shape + (k,)), axis=-1)


def episode_arrays(spec: AssociativeSpec, rng: np.random.Generator, bank: np.ndarray,
                   count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` episodes: inputs (count, T, D + 3) and targets (count, T, 4), both float32.

    Episodes are i.i.d., so any prefix of a split is a uniformly random subset; but every draw below
    covers all episodes at once, so a split drawn with another ``count`` is a different sample, not an
    extension. Draw order from ``rng``:
    1. the n bank rows of each episode: first n of a permutation of the M rows;
    2. initial valences, ``integers(0, 2, (count, n))``;
    3. the reversed set: first r of a permutation of the n local indices;
    4. presentation orders of phase A, B, C (q permutations of the r reversed odours), D;
    5. presentation noise ``normal(0, σ, (count, T, D))``, skipped when σ = 0. Drawn last, so σ changes
       the odour features and nothing else.
    Targets: channel 0 the valence asked for at probe steps (0 elsewhere), channels 1 / 2 the phase B / D
    masks, channel 3 the phase D steps whose odour was reversed.
    """
    if not (is_integer(count) and count >= 1):
        raise BPUInputError(f"{TASK_NAME}: episode count is {count!r}; expected an integer >= 1")
    if bank.shape != (spec.odours, spec.odour_dim):
        raise ValueError(f"{TASK_NAME}: odour bank is {bank.shape}; expected ({spec.odours}, {spec.odour_dim})")
    n, r, q, D = spec.per_episode, spec.reversals, spec.reversal_repeats, spec.odour_dim
    rows = _permutations(rng, (count,), spec.odours)[:, :n]
    initial = rng.integers(0, 2, size=(count, n))
    reversed_local = _permutations(rng, (count,), n)[:, :r]
    order_a = _permutations(rng, (count,), n)
    order_b = _permutations(rng, (count,), n)
    order_c = np.take_along_axis(reversed_local[:, None, :], _permutations(rng, (count, q), r), axis=2)
    order_d = _permutations(rng, (count,), n)
    local = np.concatenate([order_a, order_b, order_c.reshape(count, r * q), order_d], axis=1)

    is_reversed = np.zeros((count, n), dtype=bool)
    np.put_along_axis(is_reversed, reversed_local, True, axis=1)
    final = initial ^ is_reversed
    phase = np.repeat(np.arange(4), [n, n, r * q, n])  # A, B, C, D
    before_reversal = (phase < 2)[None, :]
    valence = np.where(before_reversal, np.take_along_axis(initial, local, axis=1),
                       np.take_along_axis(final, local, axis=1))
    teaching = ((phase == 0) | (phase == 2))[None, :]
    query = ((phase == 1) | (phase == 3))[None, :]

    inputs = np.zeros((count, spec.T, spec.input_dim), dtype=np.float32)
    inputs[..., :D] = bank[np.take_along_axis(rows, local, axis=1)]
    if spec.odour_noise > 0:
        inputs[..., :D] += rng.normal(0.0, spec.odour_noise, size=(count, spec.T, D))
    inputs[..., D] = teaching & (valence == 0)
    inputs[..., D + 1] = teaching & (valence == 1)
    inputs[..., D + 2] = query

    targets = np.zeros((count, spec.T, spec.target_dim), dtype=np.float32)
    targets[..., 0] = query * valence
    targets[..., 1] = phase == 1
    targets[..., 2] = phase == 3
    targets[..., 3] = (phase == 3) & np.take_along_axis(is_reversed, local, axis=1)
    return inputs, targets


def split_arrays(spec: AssociativeSpec, seed_sequence: np.random.SeedSequence, data_seed: int,
                 count: int) -> dict[str, np.ndarray]:
    """One split's ``inputs`` and ``targets``: the data seed's bank, episodes from the split's own seed."""
    inputs, targets = episode_arrays(spec, np.random.default_rng(seed_sequence), odour_bank(spec, data_seed), count)
    return {"inputs": inputs, "targets": targets}
