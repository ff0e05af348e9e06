"""PPO's arithmetic on hand-checked numbers."""

import pytest
import torch

from ft_train.stages.ppo_loss import gae, penalised_rewards, ppo_losses


def test_gae_with_gamma_and_lambda_one_is_the_reward_to_go_minus_the_value():
    rewards = torch.tensor([[0.0, 1.0, 2.0, 9.0]])
    values = torch.tensor([[0.5, 0.5, 0.5, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the last token is past the end
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert advantages.tolist() == [[2.5, 2.5, 1.5, 0.0]]
    assert returns[0, :3].tolist() == [3.0, 3.0, 2.0]


def test_the_score_lands_on_the_last_completion_token_and_kl_on_every_one():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    logps, ref = torch.full((2, 3), -1.0), torch.full((2, 3), -2.0)
    rewards, kl = penalised_rewards(torch.tensor([5.0, 7.0]), logps, ref, mask, kl_coef=0.1)
    assert torch.allclose(rewards, torch.tensor([[-0.1, 4.9, 0.0], [-0.1, -0.1, 6.9]]))
    assert kl.sum().item() == 5.0


def test_the_policy_loss_is_clipped_both_ways():
    mask = torch.ones(1, 2)
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[2.0, 0.5]]))  # ratios 2 and 0.5
    advantages = torch.tensor([[1.0, -1.0]])
    zero = torch.zeros(1, 2)
    policy, value, clipped = ppo_losses(new, old, advantages, zero, zero, zero, mask, cliprange=0.2, cliprange_value=0.2)
    # positive advantage: ratio capped at 1.2; negative: max(0.5, 0.8) -> -(-1 * 0.8)
    assert abs(policy.item() - (-1.2 + 0.8) / 2) < 1e-6
    assert clipped.item() == 1.0 and value.item() == 0.0


def test_whitening_rewards_keeps_their_mean_and_zeroes_what_is_masked():
    from ft_train.stages.ppo_loss import masked_mean, whiten

    rewards = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 5.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0]])
    kept = whiten(rewards, mask, shift_mean=False)
    assert masked_mean(kept, mask) == pytest.approx(3.0) and kept[0, 3] == 0 == kept[1, 2]
    assert masked_mean((kept - 3.0) ** 2, mask) == pytest.approx(1.0, rel=1e-5)
    assert masked_mean(whiten(rewards, mask), mask) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("kl", "factor"), [(12.0, 1.002), (3.0, 0.998), (6.6, 1.001), (6.0, 1.0)])
def test_the_kl_coefficient_moves_by_the_clipped_proportional_error(kl, factor):
    from ft_train.stages.ppo_control import KLController

    controller = KLController(coef=0.2, target=6.0, horizon=10_000)
    controller.update(kl, samples=100)  # error kl/6 - 1, clipped to 0.2 either way, times 100/10,000
    assert controller.coef == pytest.approx(0.2 * factor)
    fixed = KLController(coef=0.2)
    fixed.update(kl, samples=100)
    assert fixed.coef == 0.2


def test_running_moments_merged_batch_by_batch_are_those_of_all_scores():
    from ft_train.stages.ppo_control import KLController, RunningMoments, restore, state

    torch.manual_seed(0)
    batches = [torch.randn(n) * 3 + 2 for n in (1, 4, 7, 2)]
    moments = RunningMoments()
    assert moments.std == 1.0
    for batch in batches:
        moments.update(batch)
    every = torch.cat(batches).double()
    assert moments.count == 14 and moments.mean == pytest.approx(every.mean().item())
    assert moments.std == pytest.approx(every.std().item())  # the sample deviation
    normal = moments.normalise(every.float())
    assert normal.mean().item() == pytest.approx(0, abs=1e-5) and normal.std().item() == pytest.approx(1, rel=1e-4)
    # a checkpoint's state brings both back
    kl, again, fresh_kl = KLController(0.3, 6.0), RunningMoments(), KLController(0.05, 6.0)
    restore(state(kl, moments), fresh_kl, again)
    assert (fresh_kl.coef, again) == (0.3, moments)
