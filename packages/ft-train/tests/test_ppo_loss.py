"""PPO's arithmetic on hand-checked numbers."""

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
