"""Training loop: resume equivalence, resume-state validity, early stopping, device selection, GPU pinning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from connectome_bpu import gpu, training
from connectome_bpu.models import build_model
from connectome_bpu.tasks import SplitDef, TaskSpec, generate_split
from connectome_bpu.training import TrainSettings, train_model

SPEC = TaskSpec("cartesian")


def _data(name: str, k: int, count: int):
    arrays = generate_split(SPEC, SplitDef(name=name, role=name, k=k, count=count, T=12), data_seed=7)
    return torch.from_numpy(arrays["inputs"]), torch.from_numpy(arrays["targets"])


def _model(seed: int = 3):
    rng = np.random.default_rng(0)
    W = sp.random(40, 40, density=0.1, random_state=rng, format="csr", dtype=np.float32) * 0.3
    return build_model("cx_bpu", W=W, sensory_idx=np.arange(8), output_idx=np.arange(30, 40), K=3, input_dim=2,
                       output_dim=4, seed=seed, train_mode="frozen", runtime="auto", device="cpu",
                       dense_max_neurons=1000)


SETTINGS = TrainSettings(lr=1e-2, patience=10, batch_size=8, epochs=5)
TRAIN, VAL = _data("train", 0, 40), _data("val", 1, 16)


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_interrupted_job_resumes_and_matches_uninterrupted(tmp_path: Path, monkeypatch):
    reference = _model()
    expected = train_model(reference, SPEC, TRAIN, VAL, SETTINGS, seed=3, resume_path=tmp_path / "a.pt",
                           fingerprint="job")
    original_save = training._save_resume

    def crash_after_epoch_two(path, fingerprint, model, optimizer, best, best_val, best_epoch, wait, history, epoch,
                              arm):
        original_save(path, fingerprint, model, optimizer, best, best_val, best_epoch, wait, history, epoch, arm)
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill after epoch 2")

    monkeypatch.setattr(training, "_save_resume", crash_after_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_model(_model(), SPEC, TRAIN, VAL, SETTINGS, seed=3, resume_path=tmp_path / "b.pt", fingerprint="job")
    monkeypatch.setattr(training, "_save_resume", original_save)

    resumed_model = _model()
    resumed = train_model(resumed_model, SPEC, TRAIN, VAL, SETTINGS, seed=3, resume_path=tmp_path / "b.pt",
                          fingerprint="job")
    assert resumed.resumed_from_epoch == 2
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in expected.history]
    assert resumed.best_val_loss == expected.best_val_loss
    for name, value in _params(reference).items():
        assert torch.equal(value, _params(resumed_model)[name]), name


def test_resume_state_of_another_job_or_a_torn_file_is_ignored(tmp_path: Path):
    path = tmp_path / "state.pt"
    train_model(_model(), SPEC, TRAIN, VAL, TrainSettings(lr=1e-2, epochs=2, batch_size=8), seed=3,
                resume_path=path, fingerprint="old settings")
    other = train_model(_model(), SPEC, TRAIN, VAL, TrainSettings(lr=1e-2, epochs=2, batch_size=8), seed=3,
                        resume_path=path, fingerprint="new settings")
    assert other.resumed_from_epoch == 0 and other.epochs_ran == 2
    path.write_bytes(b"not a torch file")
    torn = train_model(_model(), SPEC, TRAIN, VAL, TrainSettings(lr=1e-2, epochs=1, batch_size=8), seed=3,
                       resume_path=path, fingerprint="new settings")
    assert torn.resumed_from_epoch == 0


def _train_recording_epochs(monkeypatch, tmp_path: Path, settings: TrainSettings):
    """Train, recording the trainable tensors as they stood at the end of every epoch (taken when the
    resume state of that epoch is saved)."""
    model, per_epoch = _model(), {}
    original_save = training._save_resume

    def save_and_record(path, fingerprint, model, optimizer, best, best_val, best_epoch, wait, history, epoch, arm):
        per_epoch[epoch] = training._snapshot(model)
        original_save(path, fingerprint, model, optimizer, best, best_val, best_epoch, wait, history, epoch, arm)

    monkeypatch.setattr(training, "_save_resume", save_and_record)
    outcome = train_model(model, SPEC, TRAIN, VAL, settings, seed=3, resume_path=tmp_path / "state.pt",
                          fingerprint="job")
    return model, outcome, per_epoch


def _assert_restored_best_epoch(model, outcome, per_epoch, settings: TrainSettings):
    assert outcome.epochs_ran == len(per_epoch) == outcome.best_epoch + settings.patience < settings.epochs
    assert [h["patience_wait"] for h in outcome.history[outcome.best_epoch:]] == list(range(1, settings.patience + 1))
    assert outcome.history[outcome.best_epoch - 1]["val_loss"] == outcome.best_val_loss
    restored = _params(model)
    assert set(restored) == {"W_in", "b_in", "W_out", "b_out"}          # trainable tensors only
    for name, value in restored.items():
        assert torch.equal(value, per_epoch[outcome.best_epoch][name]), name
    assert any(not torch.equal(value, per_epoch[outcome.epochs_ran][name]) for name, value in restored.items())
    assert training.mean_loss(model, SPEC, *VAL, batch_size=settings.batch_size) == outcome.best_val_loss


def test_early_stopping_stops_when_validation_worsens_and_restores_the_best_epoch(monkeypatch, tmp_path: Path):
    # lr 0.2 overshoots: validation improves for a few epochs and then gets worse than its best, so training
    # stops `patience` epochs after the best one, well before the epoch limit.
    settings = TrainSettings(lr=0.2, patience=3, epochs=30, batch_size=8)
    model, outcome, per_epoch = _train_recording_epochs(monkeypatch, tmp_path, settings)
    assert 1 < outcome.best_epoch < outcome.epochs_ran < settings.epochs
    assert outcome.best_val_loss == min(h["val_loss"] for h in outcome.history)
    _assert_restored_best_epoch(model, outcome, per_epoch, settings)


def test_no_improvement_larger_than_min_delta_stops_after_exactly_patience_epochs(monkeypatch, tmp_path: Path):
    # No later epoch can beat the first by min_delta, so the stop at epoch 1 + patience does not depend on
    # numerics; epoch 1's tensors come back even though a later validation loss is (slightly) lower.
    settings = TrainSettings(lr=1e-2, patience=2, min_delta=1e6, epochs=20, batch_size=8)
    model, outcome, per_epoch = _train_recording_epochs(monkeypatch, tmp_path, settings)
    assert (outcome.best_epoch, outcome.epochs_ran) == (1, 3)
    _assert_restored_best_epoch(model, outcome, per_epoch, settings)


def test_same_seed_same_numbers():
    a, b = _model(), _model()
    ra = train_model(a, SPEC, TRAIN, VAL, SETTINGS, seed=3)
    rb = train_model(b, SPEC, TRAIN, VAL, SETTINGS, seed=3)
    assert [h["train_loss"] for h in ra.history] == [h["train_loss"] for h in rb.history]
    assert all(torch.equal(_params(a)[n], _params(b)[n]) for n in _params(a))


def test_epoch_permutation_depends_only_on_seed_and_epoch():
    assert torch.equal(training.epoch_permutation(50, 1, 3), training.epoch_permutation(50, 1, 3))
    assert not torch.equal(training.epoch_permutation(50, 1, 3), training.epoch_permutation(50, 1, 4))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of a machine without a GPU")
def test_cuda_requested_without_gpu_fails_loudly_and_auto_falls_back():
    with pytest.raises(RuntimeError, match="training.device is 'cuda'"):
        gpu.select_device("cuda")
    assert gpu.select_device("auto").device == torch.device("cpu")


def test_concurrent_claims_get_different_gpus(tmp_path: Path):
    first = gpu.claim_gpu(2, lock_dir=tmp_path)
    second = gpu.claim_gpu(2, lock_dir=tmp_path)
    assert {first[0], second[0]} == {0, 1}
    with pytest.raises(RuntimeError, match="no free GPU"):
        gpu.claim_gpu(2, lock_dir=tmp_path, wait_seconds=0.2, poll_seconds=0.05)
    first[2].close()
    third = gpu.claim_gpu(2, lock_dir=tmp_path, wait_seconds=1)
    assert third[0] == first[0]
    second[2].close()
    third[2].close()


def test_claims_use_physical_ids_from_cuda_visible_devices(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    index, physical, handle = gpu.claim_gpu(2, lock_dir=tmp_path)
    assert physical in {"3", "5"} and (tmp_path / f"gpu{physical}.lock").exists()
    handle.close()
