"""MultiScaleFlow: split, priors in log p(y), reconstruction from all latents, temperature."""

import math

import pytest
import torch

from flowgen.flows.base import Chain
from flowgen.flows.glow import build_glow
from flowgen.flows.multiscale import MultiScaleFlow, split_channels
from flowgen.flows.preprocess import Center
from flowgen.flows.split_prior import ConditionalGaussian, LearnedGaussian, StandardGaussian
from flowgen.flows.squeeze import Squeeze


def perturbed(module: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def tiny_glow(**options) -> MultiScaleFlow:
    torch.manual_seed(0)
    model = build_glow((1, 8, 8), True, **{"levels": 2, "steps": 2, "hidden_channels": 8, **options})
    model.data_init(torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(2)))
    return perturbed(model)


def normal_log_prob(z, mean, log_std):
    return torch.distributions.Normal(mean, log_std.exp()).log_prob(z).reshape(z.shape[0], -1).sum(1)


def test_priors_match_torch_distributions_and_start_at_standard_normal():
    z = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    cond = torch.randn(3, 5, 4, 4, dtype=torch.float64)
    standard = StandardGaussian((2, 4, 4)).double()
    zero = torch.zeros(())
    torch.testing.assert_close(standard.log_prob(z), normal_log_prob(z, zero.double(), zero.double()))
    for prior, args in ((LearnedGaussian((2, 4, 4)), ()), (ConditionalGaussian((2, 4, 4), 5), (cond,))):
        prior = prior.double()
        torch.testing.assert_close(prior.log_prob(z, *args), standard.log_prob(z))  # zero-initialised
        perturbed(prior, std=0.5)
        mean, log_std = prior.params(*(args or (None,)), 3)
        torch.testing.assert_close(prior.log_prob(z, *args), normal_log_prob(z, mean.expand_as(z), log_std.expand_as(z)))


def test_log_prob_is_logdet_plus_every_levels_prior():
    model = tiny_glow().double()
    y = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    zs, conds, logdet = model._encode(y)
    assert [tuple(z.shape[1:]) for z in zs] == model.latent_shapes() == [(2, 4, 4), (8, 2, 2)]
    assert conds[0].shape == (4, 2, 4, 4) and conds[-1] is None  # z_1 is conditioned on the kept half
    expected = logdet + sum(p.log_prob(z, c) for p, z, c in zip(model.priors, zs, conds))
    torch.testing.assert_close(model.log_prob(y), expected)
    # the factored-out level's prior depends on the kept half: it is not N(0, I)
    assert not torch.allclose(model.priors[0].log_prob(zs[0], conds[0]), StandardGaussian((2, 4, 4)).double().log_prob(zs[0]))


def test_reconstruction_from_the_full_list_of_latents():
    model = tiny_glow()
    y = torch.rand(5, 1, 8, 8)
    zs, _ = model(y)
    assert (model.inverse(zs) - y).abs().max() < 1e-5
    with pytest.raises(ValueError, match="2 latents"):
        model.inverse(zs[:1])


def test_missing_latents_are_drawn_from_their_conditional_prior():
    model = tiny_glow()
    zs, _ = model(torch.rand(3, 1, 8, 8))
    # T = 0: a missing z_1 is its conditional mean given the level above
    y = model.inverse([None, zs[1]], temperature=0.0)
    z1, _ = model(y)
    mean, _ = model.priors[0].params(split_channels(model.levels[0](model.preprocess(y)[0])[0])[0], 3)
    torch.testing.assert_close(z1[0], mean, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z1[1], zs[1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("learn_prior", [False, True])
def test_temperature_scales_the_prior_std_at_every_level(learn_prior):
    model = tiny_glow(learn_prior=learn_prior).double()
    gen = torch.Generator().manual_seed(0)
    for temperature in (1.0, 0.5):
        y = model.sample(4000, temperature=temperature, generator=gen)
        assert y.shape == (4000, 1, 8, 8)
        zs, conds, _ = model._encode(y)
        for prior, z, cond in zip(model.priors, zs, conds):
            mean, log_std = prior.params(cond, z.shape[0])
            eps = (z - mean) * torch.exp(-log_std)
            assert abs(eps.std().item() - temperature) < 0.02 * temperature
    assert torch.equal(model.sample(2, 0.0), model.sample(2, 0.0))


def test_sampling_with_a_generator_is_reproducible():
    model = tiny_glow()
    a = model.sample(3, 0.7, torch.Generator().manual_seed(4))
    b = model.sample(3, 0.7, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


def test_one_level_model_and_a_prior_per_level_check():
    level = Chain([Squeeze()])
    model = MultiScaleFlow(Center(), [level], [StandardGaussian((4, 2, 2))], (1, 4, 4))
    y = torch.rand(2, 1, 4, 4)
    zs, logdet = model(y)
    assert len(zs) == 1 and torch.allclose(logdet, torch.full((2,), 16 * math.log(2.0)))
    with pytest.raises(ValueError, match="one prior per level"):
        MultiScaleFlow(Center(), [level], [], (1, 4, 4))


def test_data_init_only_in_train_mode_and_only_once():
    torch.manual_seed(0)
    model = build_glow((1, 8, 8), True, levels=2, steps=1, hidden_channels=8)
    y = torch.rand(16, 1, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval().data_init(y)
    assert model.needs_data_init() and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    model.train().data_init(y)
    assert not model.needs_data_init()
    after = {k: v.clone() for k, v in model.state_dict().items()}
    model.data_init(y * 0.5)
    assert all(torch.equal(v, after[k]) for k, v in model.state_dict().items())


def test_class_conditional_top_prior_marginal_conditional_and_auxiliary_loss():
    torch.manual_seed(0)
    model = build_glow((1, 8, 8), True, levels=2, steps=1, hidden_channels=8, num_classes=3).double()
    model.data_init(torch.rand(16, 1, 8, 8, dtype=torch.float64))
    perturbed(model, std=0.3)
    y = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 1, 0])
    per_class = torch.stack([model.log_prob(y, torch.full((5,), c)) for c in range(3)], dim=1)
    torch.testing.assert_close(model.log_prob(y, labels), per_class.gather(1, labels[:, None]).squeeze(1))
    # without labels: the mixture over a uniform label
    torch.testing.assert_close(model.log_prob(y), torch.logsumexp(per_class, 1) - math.log(3))
    assert not torch.allclose(per_class[:, 0], per_class[:, 1])
    log_p, penalties = model.log_prob_with_penalties(y, labels)
    torch.testing.assert_close(log_p, model.log_prob(y, labels))
    zs, _ = model(y)
    logits = model.priors[-1].class_logits(zs[-1])
    torch.testing.assert_close(penalties["class_loss"], 0.01 * torch.nn.functional.cross_entropy(logits, labels))
    assert model.log_prob_with_penalties(y)[1] == {}
    assert model.sample(4, labels=torch.tensor([0, 1, 2, 0])).shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="not class-conditional"):
        tiny_glow().sample(2, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="learn_prior"):
        build_glow((1, 8, 8), True, levels=2, num_classes=3, learn_prior=False)
