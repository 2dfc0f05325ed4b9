"""Whole RealNVP and Glow models on digits-sized inputs (1x8x8), built from their Hydra configs:
reconstruction, end-to-end log-det against brute force, log p(y), and start-up errors."""

import hydra
import pytest
import torch
from hydra.errors import InstantiationException

from flowgen.flows.jacobian import brute_force_logdet
from flowgen.registry import build_model


DIGITS = {"name": "digits", "shape": [1, 8, 8], "num_levels": 17, "is_image": True}
TINY = {
    "glow": ["model=glow", "model.flow.levels=2", "model.flow.steps=2", "model.flow.hidden_channels=8"],
    "realnvp": ["model=realnvp", "model.flow.num_scales=2", "model.flow.features=8", "model.flow.num_blocks=1"],
}
VARIANTS = {
    "realnvp": TINY["realnvp"],
    "realnvp_3_scales_sigmoid": [*TINY["realnvp"], "model.flow.num_scales=3", "model.flow.scale_map=sigmoid"],
    "glow": TINY["glow"],
    "glow_additive_reverse": [*TINY["glow"], "model.flow.coupling=additive", "model.flow.permutation=reverse"],
    "glow_shuffle_fixed_prior": [*TINY["glow"], "model.flow.permutation=shuffle", "model.flow.learn_prior=false"],
    "glow_plain_conv_checkerboard_logit": [*TINY["glow"], "model.flow.lu=false", "model.flow.checkerboard=true",
                                           "model.flow.preprocess=logit", "model.flow.levels=3"],
    "glow_exp_tanh_checkpointed": [*TINY["glow"], "model.flow.scale_map=exp_tanh", "model.flow.checkpoint_nets=true"],
}


def digits_like(n: int, seed: int = 0) -> torch.Tensor:
    """Dequantised 17-level images with many zeros, like the digits data."""
    gen = torch.Generator().manual_seed(seed)
    k = (torch.randint(0, 17, (n, 1, 8, 8), generator=gen) * (torch.rand(n, 1, 8, 8, generator=gen) > 0.5)).float()
    return (k + torch.rand(n, 1, 8, 8, generator=gen)) / 17


@pytest.fixture
def build(compose):
    def _build(name: str):
        torch.manual_seed(0)
        module = hydra.utils.instantiate(compose(*VARIANTS[name]).model, data=DIGITS)
        module.model.data_init(digits_like(64, seed=1))
        gen = torch.Generator().manual_seed(3)
        with torch.no_grad():  # move every zero-initialised layer away from the identity
            for p in module.model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        return module
    return _build


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_whole_model_reconstructs_and_its_logdet_matches_brute_force(build, name, train):
    m = build(name)
    m.train(train)
    y = digits_like(3, seed=2)
    zs, _ = m.model.forward(y)
    assert isinstance(zs, list) and len(zs) == m.model.num_scales
    assert (m.model.inverse(zs) - y).abs().max() < 1e-5
    model = m.model.double()
    y = y[:2].double()
    _, logdet = model.forward(y)
    flat = lambda v: torch.cat([z.reshape(1, -1) for z in model.forward(v)[0]], dim=1)  # noqa: E731
    torch.testing.assert_close(logdet, brute_force_logdet(flat, y), rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("name", ["glow", "realnvp"])
def test_module_log_prob_sample_and_bpd(build, name):
    m = build(name).eval()
    y = digits_like(4)
    with torch.no_grad():
        assert torch.isfinite(m.log_prob(y)).all() and m.log_prob(y).shape == (4,)
        k = m.sample(6, temperature=0.7)
        assert k.shape == (6, 1, 8, 8) and k.dtype == torch.uint8 and k.max() <= 16
        bpd = m.bits_per_dim((y * 17).floor().to(torch.uint8))
    assert bpd.shape == (4,) and torch.isfinite(bpd).all()


@pytest.mark.parametrize("name", ["glow", "realnvp"])
def test_non_image_data_is_rejected(name):
    with pytest.raises(ValueError, match=f"{name} needs image data"):
        build_model({"name": name}, {"shape": [2], "num_levels": None, "is_image": False})


@pytest.mark.parametrize("spec, message", [
    ({"name": "glow", "levels": 4}, r"L=4 .*2\*\*4 = 16.*image size 8x8.*L <= 3"),
    ({"name": "realnvp", "num_scales": 5}, r"L=5 .*2\*\*4 = 16.*image size 8x8.*L <= 4"),
])
def test_image_size_not_divisible_names_levels_and_size(spec, message):
    with pytest.raises(ValueError, match=message):
        build_model(spec, DIGITS)


def test_bad_size_fails_at_start_up_through_the_config(compose):
    cfg = compose("model=glow", "model.flow.levels=4")
    with pytest.raises(InstantiationException, match="image size 8x8"):
        hydra.utils.instantiate(cfg.model, data=DIGITS)


@pytest.mark.parametrize("option, message", [
    ({"coupling": "spline"}, "additive"), ({"permutation": "random"}, "1x1conv"), ({"scale_map": "exp"}, "sigmoid"),
    ({"steps": 0}, "K=0"),
])
def test_unknown_glow_options_fail_with_the_choices(option, message):
    with pytest.raises(ValueError, match=message):
        build_model({"name": "glow", **option}, DIGITS)


def test_glow_parts_in_order():
    model = build_model({"name": "glow", "levels": 2, "steps": 3, "hidden_channels": 8}, DIGITS)
    first = model.levels[0].layers
    names = [type(layer).__name__ for layer in first]
    assert names == ["Squeeze"] + ["ActNorm", "LUInvConv1x1", "AffineCoupling"] * 3
    assert [type(p).__name__ for p in model.priors] == ["ConditionalGaussian", "LearnedGaussian"]


def test_realnvp_parts_in_order():
    model = build_model({"name": "realnvp", "num_scales": 2, "features": 8, "num_blocks": 1}, DIGITS)
    first, last = model.levels[0].layers, model.levels[1].layers
    assert [tuple(layer.mask.shape) if hasattr(layer, "mask") else "squeeze" for layer in first] == [
        (1, 1, 8, 8)] * 3 + ["squeeze"] + [(1, 4, 1, 1)] * 3
    assert first[3].alternate and len(last) == 4 and all(layer.mask.shape == (1, 1, 4, 4) for layer in last)
    assert model.latent_shapes() == [(2, 4, 4), (2, 4, 4)]
    assert type(model.preprocess).__name__ == "Logit"
