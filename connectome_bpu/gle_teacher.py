"""GLE teacher-student on a small connectome-like core: does the online rule recover hidden input weights?

The teacher is a frozen BPU core with hidden input weights ``W_in*`` and readout ``W_out*``; the student is the
same core and readout with its own random ``W_in``, trained on the teacher's outputs. With the readout shared,
the input weights are identifiable, so the distance ``|W_in - W_in*| / |W_in(0) - W_in*|`` says how much of the
way to the truth a rule goes (0 = recovered, 1 = did not move), beside the output error. The inputs vary
smoothly (Gaussian-filtered noise), the regime GLE's forward-running errors are built for; the same data trains
``bptt``, the exact reference, on the same initial weights (docs/learning_rule_arms.md#seed-system-checks).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402
from scipy.ndimage import gaussian_filter1d  # noqa: E402

from .arms import build_arm  # noqa: E402
from .models import BPU, build_model  # noqa: E402
from .results import t_interval  # noqa: E402
from .tasks import TaskSpec  # noqa: E402
from .training import TrainSettings, train_model  # noqa: E402

SPEC = TaskSpec("cartesian")      # squared error over 4 outputs from 2 inputs
ARMS = ("gle", "bptt")
DEFAULTS = {"neurons": 60, "density": 0.1, "radius": 0.8, "sensory": 4, "output": 12, "K": 2, "T": 60,
            "smoothing": 4.0, "train": 256, "val": 64, "epochs": 40, "batch_size": 16, "lr": 0.01}
FAST = {**DEFAULTS, "train": 96, "epochs": 12}


def teacher_core(seed: int, settings: dict) -> sp.csr_matrix:
    """A random nonnegative sparse core scaled to spectral radius ``radius`` (so activity neither dies nor
    explodes over a sequence)."""
    rng = np.random.default_rng(seed)
    n = settings["neurons"]
    W = sp.random(n, n, density=settings["density"], random_state=rng, format="csr", dtype=np.float32)
    radius = max(abs(np.linalg.eigvals(W.toarray())))
    return (W * (settings["radius"] / radius)).astype(np.float32).tocsr()


def _bpu(W: sp.csr_matrix, seed: int, settings: dict) -> BPU:
    n = W.shape[0]
    return build_model("cx_bpu", W=W, sensory_idx=np.arange(settings["sensory"]),
                       output_idx=np.arange(n - settings["output"], n), K=settings["K"], input_dim=SPEC.input_dim,
                       output_dim=SPEC.output_dim, seed=seed, train_mode="frozen", runtime="dense", device="cpu",
                       dense_max_neurons=10_000)


def smooth_inputs(count: int, settings: dict, seed: int) -> torch.Tensor:
    """Positive, slowly varying inputs (B, T, d_in): white noise filtered along time, plus an offset."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((count, settings["T"], SPEC.input_dim))
    smooth = gaussian_filter1d(noise, settings["smoothing"], axis=1, mode="wrap")
    smooth /= smooth.std()
    return torch.from_numpy((1.0 + 0.5 * smooth).astype(np.float32))


def _relative_error(student: BPU, teacher: BPU, start: torch.Tensor) -> float:
    target = teacher.W_in.detach()
    return float((student.W_in.detach() - target).norm() / (start - target).norm())


def run_teacher(seed: int, arm: str, settings: dict) -> tuple[dict, list[dict]]:
    """Train one student by ``arm`` (``gle`` or ``bptt``) on the teacher of ``seed``; its summary row and curve."""
    torch.set_num_threads(1)
    W = teacher_core(seed, settings)
    teacher = _bpu(W, seed + 10_000, settings)
    student = _bpu(W, seed, settings)
    with torch.no_grad():   # positive input weights keep every sensory neuron active, so each one carries credit
        teacher.W_in.abs_()
        student.W_in.abs_()
        student.W_out.copy_(teacher.W_out)
        student.b_out.copy_(teacher.b_out)
    for name in ("W_out", "b_out", "b_in"):   # shared readout and zero input bias: W_in is then identifiable
        getattr(student, name).requires_grad_(False)
    inputs = {role: smooth_inputs(settings[role], settings, seed * 2 + k) for k, role in enumerate(("train", "val"))}
    with torch.no_grad():
        targets = {role: teacher(x) for role, x in inputs.items()}
    start = student.W_in.detach().clone()
    with torch.no_grad():
        initial_mse = float(SPEC.loss_sums(student(inputs["val"]), targets["val"])[0]) / targets["val"][..., 0].numel()
    arm_object = build_arm(student, SPEC, {"arm": "gle", "through_core": "transpose"}, seed) if arm == "gle" else None
    outcome = train_model(student, SPEC, (inputs["train"], targets["train"]), (inputs["val"], targets["val"]),
                          TrainSettings(lr=settings["lr"], patience=settings["epochs"], batch_size=settings["batch_size"],
                                        epochs=settings["epochs"]), seed=seed, arm=arm_object,
                          fidelity_batch=settings["val"])
    row = {"seed": seed, "arm": arm, "initial_output_mse": initial_mse, "output_mse": outcome.best_val_loss,
           "weight_error": _relative_error(student, teacher, start), "epochs": outcome.epochs_ran}
    curve = [{"seed": seed, "arm": arm, "epoch": h["epoch"], "val_loss": h["val_loss"],
              "grad_cosine": h.get("grad_cosine", np.nan)} for h in outcome.history]
    return row, curve


def run_teacher_check(settings: dict, seeds: list[int]) -> dict[str, pd.DataFrame]:
    rows, curves = [], []
    for seed in seeds:
        for arm in ARMS:
            row, curve = run_teacher(seed, arm, settings)
            rows.append(row)
            curves += curve
    return {"by_seed": pd.DataFrame(rows), "curves": pd.DataFrame(curves)}


def plot_teacher_check(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """Validation MSE per epoch (mean over seeds, 95 % band) and the final relative weight error per seed."""
    curves, by_seed = tables["curves"], tables["by_seed"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"gle": "#66a61e", "bptt": "#000000"}
    for arm, group in curves.groupby("arm", sort=False):
        epochs = np.sort(group["epoch"].unique())
        stats = [t_interval(group.loc[group["epoch"] == e, "val_loss"].to_numpy(), 0.95) for e in epochs]
        mean, low, high = (np.array(v) for v in zip(*stats))
        axes[0].plot(epochs, mean, color=colours.get(arm), label=arm, marker="o", markersize=3)
        axes[0].fill_between(epochs, low, high, color=colours.get(arm), alpha=0.15, linewidth=0)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("Epoch")
    axes[0].set_ylabel("Validation MSE to the teacher's output (output units^2)")
    axes[0].legend(frameon=False)
    for i, (arm, group) in enumerate(by_seed.groupby("arm", sort=False)):
        axes[1].scatter(np.full(len(group), i) + np.linspace(-0.1, 0.1, len(group)), group["weight_error"],
                        color=colours.get(arm), label=arm)
    axes[1].axhline(1.0, color="#7f7f7f", linestyle=":", linewidth=1.0)
    axes[1].set_xticks(range(by_seed["arm"].nunique()), list(dict.fromkeys(by_seed["arm"])))
    axes[1].set_ylabel("|W_in - W_in*| / |W_in(0) - W_in*| (1 = did not move)")
    axes[1].set_ylim(bottom=0)
    fig.suptitle("GLE teacher-student on a frozen 60-neuron core: recovering the hidden input weights (seeds shown)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=150, format="png")
    plt.close(fig)
