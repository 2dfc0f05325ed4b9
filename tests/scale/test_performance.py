"""bf16 autocast, channels-last and torch.compile act on the coupling networks and vector fields
only: networks compute in bf16 in training, log-dets and likelihoods stay float32, evaluation has no
autocast, parameter names (checkpoints) do not change."""

import copy
import logging
import pickle

import pytest
import pytorch_lightning as pl
import torch

from flowgen.lit.performance import NetworkPerformance
from flowgen.performance import autocast_networks, channels_last_networks, compile_networks, conditioner_networks
from flowgen.registry import build_model
from flowgen.training import train

DIGITS = {"shape": [1, 8, 8], "num_levels": 17, "is_image": True}
GLOW = {"name": "glow", "levels": 2, "steps": 2, "hidden_channels": 8}


def glow():
    torch.manual_seed(0)
    model = build_model(GLOW, DIGITS)
    model.data_init(torch.rand(16, 1, 8, 8))
    return model


class Probe:
    """Records (autocast on?, dtype) of the first convolution inside a coupling network."""

    def __init__(self, model):
        self.seen = []
        conv = next(m for m in conditioner_networks(model)[0].modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.seen.append((torch.is_autocast_enabled("cpu"), output.dtype))


def test_networks_are_the_coupling_nets_and_vector_fields():
    assert len(conditioner_networks(build_model({"name": "nice", "num_couplings": 4}, DIGITS))) == 4
    assert len(conditioner_networks(glow())) == 4  # one coupling per step, 2 levels x 2 steps
    ffjord = build_model({"name": "ffjord", "hidden_dims": [8]}, DIGITS)
    assert conditioner_networks(ffjord) == [b.field for b in ffjord.blocks()]


def test_bf16_inside_networks_in_training_float32_everywhere_else():
    model = glow()
    reference = copy.deepcopy(model)
    names = list(model.state_dict())
    assert autocast_networks(model) == 4 and autocast_networks(model) == 0  # idempotent
    assert list(model.state_dict()) == names
    probe = Probe(model)
    y = torch.rand(8, 1, 8, 8)
    model.train()
    log_p = model.log_prob(y)
    assert probe.seen[-1] == (True, torch.bfloat16) and log_p.dtype == torch.float32
    assert not torch.is_autocast_enabled("cpu")  # closed again after each network
    log_p.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.testing.assert_close(log_p.detach(), reference.train().log_prob(y).detach(), rtol=0.02, atol=0.5)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.log_prob(y), reference.eval().log_prob(y))  # evaluation is exactly float32
    assert probe.seen[-1] == (False, torch.float32)
    pickle.loads(pickle.dumps(model))  # ddp_spawn and EMA copies keep working


def test_compile_and_channels_last_keep_results_and_parameter_names():
    model, reference = glow(), glow()
    names = list(model.state_dict())
    assert channels_last_networks(model) == 4 and compile_networks(model, backend="eager") == 4
    assert list(model.state_dict()) == names
    y = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(model.eval().log_prob(y), reference.eval().log_prob(y), rtol=1e-5, atol=1e-4)


def test_compile_with_autocast_runs_bf16_networks_inside_compiled_code():
    model, reference = glow(), glow()
    assert compile_networks(model, autocast=torch.bfloat16, backend="eager") == 4
    y = torch.rand(4, 1, 8, 8)
    log_p = model.train().log_prob(y)
    assert log_p.dtype == torch.float32
    torch.testing.assert_close(log_p, reference.train().log_prob(y), rtol=0.02, atol=0.5)  # bf16 rounding only
    log_p.mean().backward()
    with torch.no_grad():
        torch.testing.assert_close(model.eval().log_prob(y), reference.eval().log_prob(y), rtol=1e-5, atol=1e-4)
    hooked = glow()
    autocast_networks(hooked)
    with pytest.raises(ValueError, match="autocast=dtype"):
        compile_networks(hooked)


def test_callback_refuses_conflicting_settings():
    with pytest.raises(ValueError, match="bf16"):
        NetworkPerformance(autocast="fp16")
    callback = NetworkPerformance(autocast="bf16")
    module = type("M", (), {"model": glow(), "module_type": "likelihood"})()
    with pytest.raises(ValueError, match="trainer.precision=32-true"):
        callback.setup(pl.Trainer(precision="bf16-mixed", logger=False), module, "fit")
    ffjord = type("M", (), {"model": build_model({"name": "ffjord", "hidden_dims": [8]}, DIGITS),
                            "module_type": "likelihood"})()
    with pytest.raises(ValueError, match="FFJORD"):
        NetworkPerformance(compile=True).setup(pl.Trainer(logger=False), ffjord, "fit")
    compiled = NetworkPerformance(autocast="bf16", compile=True, compile_options={"backend": "eager", "mode": None})
    assert compiled.compile_options == {"backend": "eager"}
    compiled.setup(pl.Trainer(logger=False), module, "fit")
    assert all(net._compiled_call_impl is not None for net in conditioner_networks(module.model))


@pytest.mark.slow
def test_glow_trains_with_bf16_channels_last_networks(compose, caplog):
    with caplog.at_level(logging.INFO, logger="flowgen.lit.performance"):
        results = train(compose("debug=default", "model=glow", "model.flow.steps=2", "model.flow.hidden_channels=8",
                                "callbacks.performance.autocast=bf16", "callbacks.performance.channels_last=true",
                                "fid=none"))
    assert "channels-last on 4 networks; bf16 autocast on 4 networks" in caplog.text
    assert 0 < results["test/bpd"] < 10 and results["train/skipped_steps"] == 0
