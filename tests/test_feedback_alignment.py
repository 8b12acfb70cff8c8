"""FA / PAL primitives: feedback linear layer, OU noise, high-pass filter, PAL rule, angle, random feedback."""

from __future__ import annotations

import math

import pytest
import torch

from connectome_bpu.feedback_alignment import (
    HighPass,
    OUNoise,
    alignment_angle_deg,
    feedback_linear,
    pal_update_,
    random_feedback_like,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Other jobs use the same cores: one intra-op thread keeps these small tensor loops fast and quiet."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _layer(seed: int = 0, batch: int = 5, n_in: int = 7, n_out: int = 3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_in, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(n_out, generator=gen, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(batch, n_out, generator=gen, dtype=torch.float64)
    return x, weight, bias, upstream


def _grads(output: torch.Tensor, upstream: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(output, tensors, grad_outputs=upstream))


def test_feedback_linear_with_transpose_is_exactly_backprop():
    x, weight, bias, upstream = _layer()
    ours = feedback_linear(x, weight, bias, weight.detach().T.clone())
    plain = torch.nn.functional.linear(x, weight, bias)
    assert torch.equal(ours, plain)
    for mine, theirs in zip(_grads(ours, upstream, x, weight, bias), _grads(plain, upstream, x, weight, bias)):
        assert torch.equal(mine, theirs)


def test_feedback_linear_sends_the_error_through_feedback_only():
    x, weight, bias, upstream = _layer()
    feedback = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64,
                           requires_grad=True)
    grad_x, grad_w, grad_b = _grads(feedback_linear(x, weight, bias, feedback), upstream, x, weight, bias)
    assert torch.allclose(grad_x, upstream @ feedback.detach().T)
    assert not torch.allclose(grad_x, upstream @ weight.detach())
    assert torch.allclose(grad_w, upstream.T @ x.detach())
    assert torch.allclose(grad_b, upstream.sum(0))
    feedback_linear(x, weight, bias, feedback).sum().backward()
    assert feedback.grad is None


def test_feedback_linear_without_bias_and_with_leading_dimensions():
    x, weight, _, _ = _layer(batch=6)
    feedback = weight.detach().T.clone()
    flat = feedback_linear(x, weight, None, feedback)
    stacked = feedback_linear(x.reshape(2, 3, 7), weight, None, feedback)
    assert torch.allclose(stacked.reshape(6, 3), flat)
    (grad_w_stacked,) = torch.autograd.grad(stacked.sum(), [weight])
    (grad_w_flat,) = torch.autograd.grad(flat.sum(), [weight])
    assert torch.allclose(grad_w_stacked, grad_w_flat)


def test_feedback_linear_rejects_a_wrongly_shaped_feedback():
    x, weight, bias, _ = _layer()
    with pytest.raises(ValueError, match="feedback"):
        feedback_linear(x, weight, bias, weight.detach())


def _ou_run(tau: float, std: float, steps: int, seed: int = 0) -> torch.Tensor:
    noise = OUNoise((64,), tau, std, torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.stack([noise.step() for _ in range(steps)])


@pytest.mark.parametrize("tau", [1.0, 5.0])
def test_ou_noise_has_the_stationary_std_and_autocorrelation(tau):
    run = _ou_run(tau, 0.7, 8000)
    assert float(run.std()) == pytest.approx(0.7, rel=0.03)
    lag1 = float((run[1:] * run[:-1]).mean() / (run * run).mean())
    assert lag1 == pytest.approx(1.0 - 1.0 / tau, abs=0.02)


def test_ou_noise_is_seeded_and_reset_draws_a_new_start():
    assert torch.equal(_ou_run(3.0, 1.0, 50, seed=4), _ou_run(3.0, 1.0, 50, seed=4))
    assert not torch.equal(_ou_run(3.0, 1.0, 50, seed=4), _ou_run(3.0, 1.0, 50, seed=5))
    noise = OUNoise(10, 3.0, 1.0, torch.Generator().manual_seed(0))
    start = noise.state.clone()
    noise.reset()
    assert noise.state.shape == (10,) and not torch.equal(noise.state, start)


def test_high_pass_removes_a_constant_and_passes_a_step():
    filt = HighPass(0.25)
    level = torch.full((2, 3), 4.0)
    assert all(torch.equal(filt.step(level), torch.zeros(2, 3)) for _ in range(5))
    outputs = [filt.step(level + 1.0) for _ in range(3)]
    assert torch.allclose(outputs[0], torch.ones(2, 3))
    assert torch.allclose(outputs[2], torch.full((2, 3), 0.75 ** 2))
    filt.reset()
    assert torch.equal(filt.step(level + 9.0), torch.zeros(2, 3))


def test_high_pass_with_decay_one_is_the_difference_and_zero_holds_the_change():
    difference, holder = HighPass(1.0), HighPass(0.0)
    for value in (0.0, 2.0, 2.0):
        out_difference, out_holder = difference.step(torch.tensor([value])), holder.step(torch.tensor([value]))
    assert float(out_difference) == 0.0 and float(out_holder) == 2.0


def test_pal_update_converges_to_the_noise_response_correlation_over_decay():
    gen = torch.Generator().manual_seed(0)
    true_map = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    feedback = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    lr, decay, std = 0.2, 0.5, 0.3
    for _ in range(300):
        noise = std * torch.randn(256, 6, generator=gen, dtype=torch.float64)
        returned = pal_update_(feedback, noise, noise @ true_map, lr, decay)
    assert returned is feedback
    assert alignment_angle_deg(feedback, true_map) < 3.0
    assert torch.allclose(feedback, std ** 2 * true_map / decay, rtol=0, atol=0.02)


def test_pal_update_is_in_place_and_outside_autograd():
    feedback = torch.ones(3, 2, requires_grad=True)
    returned = pal_update_(feedback, torch.ones(4, 3), torch.ones(4, 2), lr=0.5, decay=0.2)
    assert returned is feedback and feedback.grad_fn is None
    assert torch.allclose(feedback.detach(), torch.full((3, 2), 0.9 + 0.5))


@pytest.mark.parametrize(("noise_shape", "response_shape", "lr", "decay", "name"), [
    ((4, 5), (4, 2), 0.1, 0.1, "noise"),
    ((4, 3), (5, 2), 0.1, 0.1, "response_hp"),
    ((4, 3), (4, 2), -0.1, 0.1, "lr"),
    ((4, 3), (4, 2), 0.1, -0.1, "decay"),
])
def test_pal_update_rejects_bad_arguments(noise_shape, response_shape, lr, decay, name):
    with pytest.raises(ValueError, match=name):
        pal_update_(torch.zeros(3, 2), torch.zeros(noise_shape), torch.zeros(response_shape), lr, decay)


def test_alignment_angle_of_self_negation_orthogonal_and_zero():
    matrix = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert alignment_angle_deg(matrix, matrix) == pytest.approx(0.0, abs=1e-5)
    assert alignment_angle_deg(matrix, -matrix) == pytest.approx(180.0, abs=1e-5)
    assert alignment_angle_deg(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])) == pytest.approx(90.0)
    assert math.isnan(alignment_angle_deg(matrix, torch.zeros(5, 3)))
    with pytest.raises(ValueError, match="shape"):
        alignment_angle_deg(matrix, matrix.T)


def test_random_feedback_matches_shape_and_norm_and_is_seeded():
    weight_t = torch.randn(30, 3, generator=torch.Generator().manual_seed(0))
    first = random_feedback_like(weight_t, torch.Generator().manual_seed(7))
    assert first.shape == weight_t.shape
    assert float(first.norm()) == pytest.approx(float(weight_t.norm()), rel=1e-6)
    assert torch.equal(first, random_feedback_like(weight_t, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, random_feedback_like(weight_t, torch.Generator().manual_seed(8)))
    assert alignment_angle_deg(first, weight_t) > 45.0


@pytest.mark.parametrize(("make", "name"), [
    (lambda: OUNoise(3, 0.5, 1.0, torch.Generator()), "tau"),
    (lambda: OUNoise(3, 2.0, -1.0, torch.Generator()), "std"),
    (lambda: HighPass(1.5), "decay"),
    (lambda: HighPass(-0.1), "decay"),
])
def test_bad_filter_and_noise_arguments_name_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()
