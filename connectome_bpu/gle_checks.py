"""Seed-system checks for GLE learning: does the real-time error do what backprop through time would?

Two checks, each comparing the same network trained by different error signals ("arms"):

* ``gle``: prospective errors (``GLENetwork`` as is);
* ``bp``: instantaneous errors (``prospective_errors=False``): the same local plasticity, blind to the
  lag each leaky unit adds;
* ``bptt_tw{K}``: truncated BPTT through the same forward dynamics, windows of K steps.

**Lag teacher-student.** A chain input -> unit 0 -> unit 1 of softplus GLE units (tau_r = 0.1, no bias,
gamma = 1) must imitate a teacher chain (w = (1, 2), tau_m = (1, 2)) on a smoothed +-1 square wave, learning
both weights and membrane time constants from U(0, 1). The output lags the input by the time constants,
so an error that ignores the lag (``bp``) points the wrong way; GLE's prospective error undoes the lag and
recovers the teacher. The published protocol trains 4000 time units; ``LAG_DEFAULTS`` trains 400 (time
budget): enough for GLE to fit the teacher's output on every seed tried, though one of three seeds is
still sliding along the nearly flat valley that trades tau_m0 against tau_m1 when training stops.

**MNIST-1D.** The data set comes from the mnist1d package's own generator (4000 train / 1000 test at its
default arguments, data seed 42, the sequence length set to ``steps_per_sample``: the published split). The
validation split, the only one used for tuning, early stopping and the learning-rate schedule, is a second,
independent draw of the same generator (seed 43), so that training keeps all 4000 published sequences and
the test split is never seen before the final evaluation. The defaults are
the published end-to-end protocol: 360 steps per sample, 6 hidden layers of 17 LE + 36 LI units (LI tau_m 3
and 6 steps; the first layer linear, a filter bank of the input; 14,956 parameters), batches of 100, Adam
stepped every dt at 1e-3, halved on validation-loss plateaus, 150 epochs; every step carries a cross-entropy
error and the class is the argmax of the output summed over all steps. As in the published runs the network
is never reset (one running state goes from batch to batch and through validation and test) and every error
reads the previous step's output and slope. An online arm costs about 21 minutes
per seed on one CPU core (0.57 ms per update in ``bench/bench_gle_network.py``), as every one of the 360 steps
of every batch is a separate update. Full BPTT through the same dynamics (arm ``bptt_tw360``) is the
network's own ceiling, which tells a shortfall of the GLE rule from one of the network. ``MNIST1D_FAST`` is a
tiny version for tests only.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.ndimage import gaussian_filter1d  # noqa: E402

from .gle import GLENetwork, le_li_time_constants  # noqa: E402

Tables = dict[str, pd.DataFrame]
LOG = logging.getLogger(__name__)

# Published MNIST-1D test accuracies (%), full protocols, for the figure: (value, label, line style).
PUBLISHED_MNIST1D = ((91.7, "GLE 6x(17 LE+36 LI), ~15k params, 150 epochs: 91.7 +- 0.8", "-"),
                     (93.5, "GLE ~42k params: 93.5 +- 0.9", "--"),
                     (65.0, "MLP (BPTT baseline): 65", "-."))
PUBLISHED_GRU_RANGE = (90.3, 94.0)


# --------------------------------------------------------------------------- lag teacher-student

@dataclass(frozen=True)
class LagSettings:
    """The lag teacher-student task; durations in the task's time units, ``*_steps`` in steps of dt.

    ``base_lr / beta`` is Adam's learning rate per dt (beta scales the errors, so this keeps the step size
    independent of beta); BPTT arms update once per window of K steps with K times that.
    """

    dt: float = 0.01
    half_period: float = 2.0
    max_shift_steps: int = 200
    smooth_sigma_steps: float = 5.0
    rows: int = 16
    beta: float = 0.01
    base_lr: float = 1e-6
    tau_r: float = 0.1
    tau_floor_steps: int = 10
    gamma: float = 1.0
    teacher_weights: tuple[float, float] = (1.0, 2.0)
    teacher_tau_m: tuple[float, float] = (1.0, 2.0)
    settle_time: float = 50.0
    train_time: float = 400.0
    eval_time: float = 40.0
    arms: tuple[str, ...] = ("gle", "bp", "bptt_tw20", "bptt_tw200")


LagLike = Mapping[str, Any] | LagSettings
LAG_DEFAULTS: dict[str, Any] = asdict(LagSettings())
LAG_FAST = {**LAG_DEFAULTS, "settle_time": 20.0, "train_time": 160.0, "eval_time": 8.0, "arms": ("gle", "bp")}


def _lag(settings: LagLike) -> LagSettings:
    """Settings as plain mappings (the presets, a config file) or as the dataclass; unknown keys raise."""
    return settings if isinstance(settings, LagSettings) else LagSettings(**settings)


def _steps(duration: float, dt: float) -> int:
    return int(round(duration / dt))


def lag_inputs(settings: LagLike, seed: int) -> np.ndarray:
    """One period [steps, rows] of the smoothed +-1 square wave, each row circularly shifted by its own
    random number of steps. The stream is periodic, so step t of it is row t mod period."""
    settings = _lag(settings)
    half = _steps(settings.half_period, settings.dt)
    wave = np.where(np.arange(2 * half) < half, 1.0, -1.0)
    shifts = np.random.default_rng([seed, 0]).integers(0, settings.max_shift_steps, settings.rows)
    rows = np.stack([np.roll(wave, int(s)) for s in shifts], axis=1)
    return gaussian_filter1d(rows, settings.smooth_sigma_steps, axis=0, mode="wrap")


def _chain(settings: LagSettings, weights: Iterable[float], tau_m: Iterable[float], arm: str) -> GLENetwork:
    net = GLENetwork([1, 1, 1], [float(t) for t in tau_m], settings.tau_r, "softplus", "softplus",
                     dt=settings.dt, gamma=settings.gamma, beta=settings.beta, loss="mse",
                     prospective_errors=arm == "gle", learn_tau_m=True,
                     tau_floor=settings.tau_floor_steps * settings.dt, bias=False, dtype=torch.float64)
    with torch.no_grad():
        for layer, w in zip(net.weights, weights):
            layer.fill_(float(w))
    return net


def lag_targets(settings: LagLike, inputs: np.ndarray) -> np.ndarray:
    """The teacher's output [steps, rows, 1] over one input period, after settling.

    The settled teacher is periodic too (its memory of the start fades as exp(-t / 2)), so this period
    is its output at every later step of the same phase.
    """
    settings = _lag(settings)
    teacher = _chain(settings, settings.teacher_weights, settings.teacher_tau_m, "teacher")
    xs = torch.from_numpy(inputs).unsqueeze(-1)
    teacher.run_sequence(xs.repeat(math.ceil(_steps(settings.settle_time, settings.dt) / xs.shape[0]), 1, 1))
    return teacher.run_sequence(xs).numpy()


def _bptt_window(arm: str) -> int | None:
    return int(arm.removeprefix("bptt_tw")) if arm.startswith("bptt_tw") else None


def _lag_student(settings: LagSettings, seed: int, arm: str) -> GLENetwork:
    """Weights and tau_m from U(0, 1) (tau_m raised to the floor); the same draw for every arm of a seed."""
    rng = np.random.default_rng([seed, 1])
    weights = rng.uniform(0.0, 1.0, 2)
    tau_m = np.maximum(rng.uniform(0.0, 1.0, 2), settings.tau_floor_steps * settings.dt)
    return _chain(settings, weights, tau_m, arm)


def _run_lag_arm(settings: LagSettings, seed: int, arm: str, inputs: np.ndarray,
                 targets: np.ndarray) -> tuple[dict, pd.DataFrame]:
    """Settle without plasticity, then train one input period at a time; loss = MSE per period."""
    start = time.perf_counter()
    net = _lag_student(settings, seed, arm)
    window = _bptt_window(arm)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.base_lr / settings.beta * (window or 1), fused=True)
    xs, ts = torch.from_numpy(inputs).unsqueeze(-1), torch.from_numpy(targets)
    period = xs.shape[0]
    settle = torch.arange(_steps(settings.settle_time, settings.dt)) % period
    net.run_sequence(xs[settle], ts[settle])
    xs, ts = torch.roll(xs, -(len(settle) % period), 0), torch.roll(ts, -(len(settle) % period), 0)
    losses = []
    for _ in range(_steps(settings.train_time, settings.dt) // period):
        ys = net.run_sequence(xs, ts, optimizer, bptt_window=window)
        losses.append(float((ys - ts).pow(2).mean()))
    period_time = period * settings.dt
    weights = [float(w.detach()) for w in net.weights]
    tau_m = [float(t.detach()) for t in net.tau_m]
    row = {"seed": seed, "arm": arm,
           "output_mse": float(np.mean(losses[-max(1, round(settings.eval_time / period_time)):])),
           "weight_error": float(np.linalg.norm(np.subtract(weights, settings.teacher_weights))),
           "tau_error": float(np.linalg.norm(np.subtract(tau_m, settings.teacher_tau_m))),
           "w0": weights[0], "w1": weights[1], "tau_m0": tau_m[0], "tau_m1": tau_m[1],
           "seconds": time.perf_counter() - start}
    curve = pd.DataFrame({"seed": seed, "arm": arm, "time": period_time * np.arange(1, len(losses) + 1),
                          "loss": losses})
    return row, curve


# --------------------------------------------------------------------------- MNIST-1D

@dataclass(frozen=True)
class MnistSettings:
    """MNIST-1D through a GLE network of LE+LI hidden layers; time constants in steps (dt = 1).

    The published run's time step is 0.2 of a template unit (360 steps per sample); its LI units have
    tau_m of 0.6 and 1.2 units (3 and 6 steps) and its LE units are instantaneous. ``lr`` is Adam's rate per
    sample: online arms step every dt with lr / steps (the published 5e-3 per template unit, i.e. 1e-3 per
    step at 360 steps). BPTT arms update once per window with ``bptt_lr`` (chosen on validation: the
    online rate times the window, 0.36 per update, diverges). The rate halves when the validation loss
    has not improved for ``plateau_patience`` epochs.
    """

    data_seed: int = 42
    validation_seed: int = 43
    validation: int = 500
    steps_per_sample: int = 360
    hidden_layers: int = 6
    n_le: int = 17
    n_li: int = 36
    li_tau_m: tuple[float, ...] = (3.0, 6.0)
    input_activation: str = "identity"
    activation: str = "tanh"
    batch_size: int = 100
    epochs: int = 150
    lr: float = 0.36
    bptt_lr: float = 0.01
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    beta: float = 1.0
    # The published stepping: the network is never reset (training, validation and test continue one running
    # state) and every unit's error reads the previous step's output and slope. Together they speed up the first
    # epochs; what moved the end of training was GLENetwork sending errors down with the weights of the step
    # that made them (docs/learning_rule_arms.md). False/False starts every batch from rest with same-step errors.
    carry_state: bool = True
    delayed_errors: bool = True
    # bptt_tw360 is full BPTT through the same dynamics (360 = steps_per_sample): the ceiling of this network,
    # which tells a shortfall of the GLE rule from one of the network or protocol.
    arms: tuple[str, ...] = ("gle", "bp", "bptt_tw360")


MnistLike = Mapping[str, Any] | MnistSettings
MNIST1D_DEFAULTS: dict[str, Any] = asdict(MnistSettings())
MNIST1D_FAST = {**MNIST1D_DEFAULTS, "steps_per_sample": 40, "hidden_layers": 2, "n_le": 8, "n_li": 16,
                "li_tau_m": (1.0, 2.0), "lr": 0.04, "batch_size": 500, "epochs": 3, "arms": ("gle", "bp")}


def _mnist(settings: MnistLike) -> MnistSettings:
    """Settings as plain mappings (the presets, a config file) or as the dataclass; unknown keys raise, and so
    does a validation draw that would repeat the training and test data."""
    settings = settings if isinstance(settings, MnistSettings) else MnistSettings(**settings)
    if settings.validation_seed == settings.data_seed:
        raise ValueError(f"mnist1d validation_seed must differ from data_seed ({settings.data_seed}): the same seed "
                         "draws the same sequences, so validation would repeat the training data")
    if not 1 <= settings.validation <= 4000:
        raise ValueError(f"mnist1d validation must be between 1 and 4000 sequences, got {settings.validation}")
    return settings


@lru_cache(maxsize=2)
def _generated_mnist1d(data_seed: int, steps_per_sample: int) -> tuple[np.ndarray, ...]:
    """The mnist1d package's own generator at its default arguments (4000 train / 1000 test), with the
    sequence length set to ``steps_per_sample`` (the generator resamples its 72-point signals itself).

    It reseeds Python's and NumPy's global generators; their states are put back so that generating the
    data changes nothing else in the process.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        args = get_dataset_args()
        args.seed, args.final_seq_length = data_seed, steps_per_sample
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return tuple(np.asarray(data[key]) for key in ("x", "y", "x_test", "y_test"))


def mnist1d_splits(settings: MnistLike) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train / validation / test as (x [steps, n, 1], labels [n]): train and test are the generator's own split
    at ``data_seed``; validation is the first ``validation`` training sequences of its draw at
    ``validation_seed`` (same templates and transformations, other random draws; the generator standardises
    each draw by its own mean and spread, which differ by 0.1 % between seeds 42 and 43)."""
    settings = _mnist(settings)
    x, y, x_test, y_test = _generated_mnist1d(settings.data_seed, settings.steps_per_sample)
    x_val, y_val = _generated_mnist1d(settings.validation_seed, settings.steps_per_sample)[:2]

    def sequences(rows: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        steps = torch.from_numpy(np.ascontiguousarray(rows.T, dtype=np.float32))
        return steps.unsqueeze(-1), torch.from_numpy(labels.astype(np.int64))

    return {"train": sequences(x, y), "validation": sequences(x_val[:settings.validation], y_val[:settings.validation]),
            "test": sequences(x_test, y_test)}


def mnist1d_network(settings: MnistLike, arm: str, seed: int) -> GLENetwork:
    """Hidden layers of ``n_le`` LE units and ``n_li`` LI units (split evenly over the ``li_tau_m`` values, in
    order), the first of them with ``input_activation`` (a linear filter bank in the published network),
    and an LE read-out of 10 logits."""
    settings = _mnist(settings)
    groups = np.asarray(settings.li_tau_m, dtype=float)
    li_tau_m = groups[np.arange(settings.n_li) * groups.size // settings.n_li]
    tau_m, tau_r = le_li_time_constants(settings.n_le, li_tau_m)
    layers = settings.hidden_layers
    return GLENetwork([1] + [settings.n_le + settings.n_li] * layers + [10], [tau_m] * layers + [1.0],
                      [tau_r] * layers + [1.0], [settings.input_activation] + [settings.activation] * (layers - 1),
                      "identity", beta=settings.beta, loss="cross_entropy", prospective_errors=arm == "gle",
                      delayed_errors=settings.delayed_errors, seed=seed)


def _start(net: GLENetwork, batch_size: int, carry_state: bool) -> None:
    """Continue the running state (resized to the batch) or start from rest."""
    if carry_state:
        net.resize_state(batch_size)
    else:
        net.reset_state(batch_size)


@torch.no_grad()
def mnist1d_evaluate(net: GLENetwork, xs: torch.Tensor, labels: torch.Tensor,
                     carry_state: bool = False) -> tuple[float, float]:
    """(accuracy, loss): the class is the argmax of the output summed over all time steps; the loss is the
    network's own instantaneous loss (what every step's error descends) averaged over steps and samples.
    With ``carry_state`` the sequences continue the network's running state instead of starting from rest."""
    _start(net, xs.shape[1], carry_state)
    ys = net.run_sequence(xs)
    loss = net.instantaneous_loss(ys.flatten(0, 1), labels.repeat(ys.shape[0]))
    return float((ys.sum(0).argmax(-1) == labels).float().mean()), float(loss)


def _train_epoch(net: GLENetwork, optimizer: torch.optim.Optimizer, xs: torch.Tensor, labels: torch.Tensor,
                 batch_size: int, generator: torch.Generator, window: int | None, carry_state: bool) -> None:
    """One pass in a seeded random order; each batch continues the running state or starts from rest."""
    order = torch.randperm(labels.shape[0], generator=generator)
    for start in range(0, labels.shape[0], batch_size):
        batch = order[start:start + batch_size]
        _start(net, batch.shape[0], carry_state)
        net.run_sequence(xs[:, batch], labels[batch].expand(xs.shape[0], -1), optimizer, window)


def _run_mnist1d_arm(settings: MnistSettings, seed: int, arm: str,
                     splits: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> tuple[dict, pd.DataFrame]:
    """Train, keep the parameters of the best validation epoch, and test those once."""
    start = time.perf_counter()
    net = mnist1d_network(settings, arm, seed)
    steps, window = splits["train"][0].shape[0], _bptt_window(arm)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.bptt_lr if window else settings.lr / steps,
                                 fused=True)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=settings.plateau_factor,
                                                          patience=settings.plateau_patience)
    generator = torch.Generator().manual_seed(seed)
    accuracies, losses, best, best_state = [], [], -1.0, None
    for epoch in range(1, settings.epochs + 1):
        _train_epoch(net, optimizer, *splits["train"], settings.batch_size, generator, window, settings.carry_state)
        accuracy, loss = mnist1d_evaluate(net, *splits["validation"], settings.carry_state)
        schedule.step(loss)
        accuracies.append(accuracy)
        losses.append(loss)
        LOG.info("mnist1d seed %d %s epoch %d/%d: validation accuracy %.3f, loss %.4f, lr %.3g (%.0f s)", seed, arm,
                 epoch, settings.epochs, accuracy, loss, optimizer.param_groups[0]["lr"], time.perf_counter() - start)
        if accuracy > best:
            best, best_state = accuracy, {key: value.clone() for key, value in net.state_dict().items()}
    net.load_state_dict(best_state)
    row = {"seed": seed, "arm": arm, "test_accuracy": mnist1d_evaluate(net, *splits["test"], settings.carry_state)[0],
           "val_accuracy_best": best, "best_epoch": accuracies.index(best) + 1,
           "final_val_accuracy": accuracies[-1], "parameter_count": net.parameter_count(),
           "steps_per_sample": steps, "epochs": settings.epochs, "seconds": time.perf_counter() - start}
    return row, pd.DataFrame({"seed": seed, "arm": arm, "epoch": np.arange(1, settings.epochs + 1),
                              "val_accuracy": accuracies, "val_loss": losses})


# --------------------------------------------------------------------------- running and plotting

class _OneThread:
    """Experiments run on one core (the machine is shared); the caller's thread count comes back after."""

    def __enter__(self) -> None:
        self.previous = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.previous)


def _tables(rows: list[dict], curves: list[pd.DataFrame]) -> Tables:
    return {"by_seed": pd.DataFrame(rows), "curves": pd.concat(curves, ignore_index=True)}


def run_lag_check(settings: LagLike, seeds: Iterable[int]) -> Tables:
    """Every arm on every seed. "by_seed": one row per (seed, arm) with output_mse (mean over the last
    ``eval_time``), weight_error and tau_error (Euclidean distance to the teacher's), the learnt values and
    seconds; "curves": seed, arm, time (training time units), loss (output MSE of each input period)."""
    settings = _lag(settings)
    rows, curves = [], []
    with _OneThread():
        for seed in seeds:
            inputs = lag_inputs(settings, int(seed))
            targets = lag_targets(settings, inputs)
            for arm in settings.arms:
                row, curve = _run_lag_arm(settings, int(seed), arm, inputs, targets)
                rows.append(row)
                curves.append(curve)
    return _tables(rows, curves)


def run_mnist1d_check(settings: MnistLike, seeds: Iterable[int]) -> Tables:
    """Every arm on every seed (one data set for all). "by_seed": one row per (seed, arm) with
    test_accuracy (at the best validation epoch), val_accuracy_best, best_epoch, final_val_accuracy,
    parameter_count, steps_per_sample and seconds; "curves": seed, arm, epoch, val_accuracy."""
    settings = _mnist(settings)
    rows, curves = [], []
    with _OneThread():
        splits = mnist1d_splits(settings)
        for seed in seeds:
            for arm in settings.arms:
                row, curve = _run_mnist1d_arm(settings, int(seed), arm, splits)
                rows.append(row)
                curves.append(curve)
    return _tables(rows, curves)


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (0 for a single value)."""
    values = np.asarray(list(values), dtype=float)
    if values.size < 2:
        return float(values.mean()), 0.0
    return float(values.mean()), float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1)
                                       / math.sqrt(values.size))


def _summary(values: np.ndarray, log: bool) -> tuple[float, float, float]:
    """(centre, low, high) over seeds: the mean and its 95 % t-interval, taken on log10 of the values for
    quantities that span decades (a geometric mean), since an arithmetic mean there is just the worst seed."""
    if not log:
        mean, half = mean_ci95(values)
        return mean, mean - half, mean + half
    mean, half = mean_ci95(np.log10(values))
    return 10.0 ** mean, 10.0 ** (mean - half), 10.0 ** (mean + half)


def _band(ax, curves: pd.DataFrame, x: str, y: str, scale: float = 1.0, log: bool = False) -> None:
    """One line per arm: the centre over seeds, its 95 % t-interval shaded."""
    for arm, group in curves.groupby("arm", sort=False):
        at, values = zip(*((key, _summary(v.to_numpy(float) * scale, log)) for key, v in group.groupby(x)[y]))
        centre, low, high = np.array(values).T
        line, = ax.plot(at, centre, label=arm, lw=1.5)
        ax.fill_between(at, low, high, color=line.get_color(), alpha=0.2, lw=0)


def _dots(ax, by_seed: pd.DataFrame, column: str, scale: float = 1.0, log: bool = False) -> list[str]:
    """Per arm: the centre over seeds with its 95 % t-interval as error bar, and every seed as a small dot."""
    arms = list(dict.fromkeys(by_seed["arm"]))
    for i, arm in enumerate(arms):
        values = by_seed.loc[by_seed["arm"] == arm, column].to_numpy(float) * scale
        centre, low, high = _summary(values, log)
        ax.errorbar(i, centre, yerr=[[centre - low], [high - centre]], fmt="o", color=f"C{i}", ms=8, capsize=5,
                    lw=2)
        ax.scatter(i + 0.15 + np.zeros(values.size), values, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_xlim(-0.5, len(arms) - 0.5)
    ax.grid(alpha=0.3)
    return arms


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_lag_check(tables: Tables, path) -> None:
    """Output MSE over training, and how far each arm's weights and tau_m ended from the teacher's."""
    by_seed = tables["by_seed"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    _band(axes[0], tables["curves"], "time", "loss", log=True)
    axes[0].set(yscale="log", xlabel="training time (time units; dt = 0.01)",
                ylabel="output MSE per input period (output units²)", title="student output error")
    axes[0].legend(title="arm", fontsize=8)
    axes[0].grid(alpha=0.3)
    _dots(axes[1], by_seed, "weight_error", log=True)
    axes[1].set(yscale="log", xlabel="arm", ylabel="|w − w_teacher| at the end (weight units)", title="weights")
    _dots(axes[2], by_seed, "tau_error", log=True)
    axes[2].set(yscale="log", xlabel="arm", ylabel="|τ_m − τ_m,teacher| at the end (time units)",
                title="membrane time constants")
    fig.suptitle(f"Lag teacher-student chain: geometric mean over {by_seed['seed'].nunique()} seeds, "
                 "95 % t-interval of log10 (bands / error bars); black dots = single seeds")
    _save(fig, path)


def plot_mnist1d_check(tables: Tables, path) -> None:
    """Validation accuracy per epoch, and test accuracy per arm beside the published full-protocol numbers."""
    by_seed = tables["by_seed"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.1, 1]})
    _band(axes[0], tables["curves"], "epoch", "val_accuracy", scale=100.0)
    axes[0].axhline(10.0, color="gray", lw=0.8, ls=":", label="chance")
    axes[0].set(xlabel="epoch", ylabel="validation accuracy (%)", ylim=(0, 100), title="validation split")
    axes[0].legend(title="arm", fontsize=8)
    axes[0].grid(alpha=0.3)
    arms = _dots(axes[1], by_seed, "test_accuracy", scale=100.0)
    counts = by_seed.groupby("arm")["parameter_count"].first()
    axes[1].set_xticks(range(len(arms)), [f"{arm}\n{counts[arm]:,} params" for arm in arms])
    axes[1].axhspan(*PUBLISHED_GRU_RANGE, color="gray", alpha=0.2,
                    label=f"GRU (BPTT): {PUBLISHED_GRU_RANGE[0]}–{PUBLISHED_GRU_RANGE[1]}")
    for value, label, style in PUBLISHED_MNIST1D:
        axes[1].axhline(value, color="black", ls=style, lw=1, label=label)
    axes[1].axhline(10.0, color="gray", lw=0.8, ls=":")
    axes[1].set(xlabel="arm (this run)", ylabel="test accuracy at best validation epoch (%)", ylim=(0, 100),
                title="test accuracy: dots = this run, lines = published")
    axes[1].legend(fontsize=7, loc="lower right", title="published, full protocols", title_fontsize=7)
    fig.suptitle(f"MNIST-1D, GLE network of LE+LI units: mean over {by_seed['seed'].nunique()} seeds, "
                 "95 % t-interval; black dots = single seeds")
    _save(fig, path)
