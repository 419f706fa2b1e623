import math

import pytest
import torch
from torch import nn

from ganforge.losses import LOSSES, get_loss, gradient_penalty, r1_penalty
from ganforge.losses.adversarial import (
    bce_d, hinge_d, lsgan_d, lsgan_g, minimax_g, nonsaturating_g, wasserstein_d, wasserstein_g,
)


def test_cross_entropy_losses_at_an_undecided_discriminator():
    zero = torch.zeros(8)
    assert bce_d(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert minimax_g(zero).item() == pytest.approx(-math.log(2))
    assert nonsaturating_g(zero).item() == pytest.approx(math.log(2))


def test_cross_entropy_matches_the_probability_form():
    real, fake = torch.tensor([1.3, -0.2]), torch.tensor([0.4, -2.0])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    torch.testing.assert_close(bce_d(real, fake), expected)
    torch.testing.assert_close(minimax_g(fake), torch.log(1 - d_fake).mean())
    torch.testing.assert_close(nonsaturating_g(fake), -torch.log(d_fake).mean())


def test_minimax_saturates_where_non_saturating_does_not():
    # A confident D (D(G(z)) ~ 0): the minimax gradient vanishes, the non-saturating one stays ~ -1.
    logit = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(minimax_g(logit), logit)
    (g_ns,) = torch.autograd.grad(nonsaturating_g(logit), logit)
    assert abs(g_mm.item()) == pytest.approx(torch.sigmoid(torch.tensor(-10.0)).item(), rel=1e-4)
    assert g_ns.item() == pytest.approx(-1.0, abs=1e-4)


def test_one_sided_label_smoothing_changes_only_the_real_term():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    smooth = bce_d(real, fake, real_target=0.9)
    p = torch.sigmoid(real)
    expected = -(0.9 * torch.log(p) + 0.1 * torch.log(1 - p)) + torch.nn.functional.softplus(fake)
    torch.testing.assert_close(smooth, expected.squeeze())


def test_least_squares_hinge_and_wasserstein_closed_forms():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.5, -1.5])
    assert lsgan_d(real, fake).item() == pytest.approx(0.5 * (0.5 + (0.25 + 2.25) / 2))
    assert lsgan_g(fake).item() == pytest.approx(0.5 * ((0.25 + 6.25) / 2))
    assert hinge_d(real, fake).item() == pytest.approx((0 + 1) / 2 + (1.5 + 0) / 2)
    assert wasserstein_d(real, fake).item() == pytest.approx(-0.5 - 0.5)
    assert wasserstein_g(fake).item() == pytest.approx(0.5)


def test_gradient_penalties_on_a_linear_critic():
    critic = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 0.0, 4.0]]))  # |w| = 5 everywhere
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((5 - 1) ** 2)
    assert r1_penalty(critic, real).item() == pytest.approx(25.0)


def test_gradient_penalty_on_images_and_it_backpropagates():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    gp = gradient_penalty(critic, torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2))
    gp.backward()
    assert critic[1].weight.grad is not None and torch.isfinite(critic[1].weight.grad).all()


def test_registry_and_unknown_name():
    assert set(LOSSES) == {"minimax", "ns", "lsgan", "wgan", "wgan-gp", "hinge"}
    with pytest.raises(ValueError, match="choose one of: minimax, ns"):
        get_loss("vanilla")


@pytest.mark.parametrize("name", ["wgan-gp", "hinge"])
def test_joint_critic_step_equals_separate_calls(name):
    """critic_step(joint=True) stacks real, fake and WGAN-GP's interpolates into one critic call: for a critic
    whose rows do not interact, the loss, the logs and D's gradients equal those of the three separate calls (the
    same interpolation weights: both draw them from the seeded generator first, the critic draws nothing)."""
    from ganforge.families.base import critic_step

    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
    real, fake = torch.randn(12, 6), torch.randn(12, 6) + 1.0
    outs, grads = [], []
    for joint in (False, True):
        critic.zero_grad()
        torch.manual_seed(1)
        out = critic_step(get_loss(name), critic, real, fake, 10.0, 1.0, real, fake, joint=joint)
        out.loss.backward()
        outs.append(out)
        grads.append([p.grad.clone() for p in critic.parameters()])
    torch.testing.assert_close(outs[1].loss, outs[0].loss)
    assert outs[0].logs.keys() == outs[1].logs.keys()
    for k in outs[0].logs:
        torch.testing.assert_close(torch.as_tensor(outs[1].logs[k]), torch.as_tensor(outs[0].logs[k]))
    for g_joint, g_sep in zip(grads[1], grads[0]):
        torch.testing.assert_close(g_joint, g_sep)
