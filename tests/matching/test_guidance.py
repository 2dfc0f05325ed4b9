"""Classifier-free guidance: the guided field interpolates/extrapolates the two fields."""

import pytest
import torch
from torch import nn

from flowgen.matching.guidance import GuidedField, drop_labels
from flowgen.matching.model import build_cfm


class LabelField(nn.Module):
    """v(t, x | y) = x * (y + 1): a different velocity per label, null label = 3."""

    num_classes = 3

    def forward(self, t, x, y=None):
        y = torch.full((x.shape[0],), 3) if y is None else y
        return x * (y.to(x.dtype) + 1).view(-1, *([1] * (x.dim() - 1)))


@pytest.mark.parametrize("w", [0.0, 1.0, 2.5])
def test_guided_field_is_null_plus_w_times_the_conditional_difference(w):
    x, labels = torch.randn(4, 2), torch.tensor([0, 1, 2, 0])
    field = LabelField()
    guided = GuidedField(field, labels, null_label=3, scale=w)(torch.tensor(0.3), x)
    conditional, null = field(0.3, x, y=labels), field(0.3, x, y=torch.full((4,), 3))
    assert torch.allclose(guided, null + w * (conditional - null))


def test_label_dropout_uses_the_null_label_at_the_requested_rate():
    labels = torch.arange(10).repeat(1000)
    gen = torch.Generator().manual_seed(0)
    dropped = drop_labels(labels, 10, 0.2, gen)
    is_null = dropped == 10
    assert abs(is_null.float().mean().item() - 0.2) < 0.02
    assert torch.equal(dropped[~is_null], labels[~is_null])
    assert drop_labels(labels, 10, 0.0) is labels


def small_conditional_cfm(**kwargs):
    """A conditional U-Net whose zero-initialised convolutions are randomised, so that labels
    change the velocity (and gradients reach the label table)."""
    net = {"base_channels": 8, "channel_mult": (1, 2), "num_res_blocks": 1, "attention_resolutions": ()}
    model = build_cfm((1, 8, 8), True, net=net, num_classes=10, **kwargs)
    with torch.no_grad():
        for p in model.transform.field.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(std=0.1)
    return model


def test_conditional_model_needs_labels_and_samples_one_class_per_label():
    torch.manual_seed(0)
    model = small_conditional_cfm()
    y = torch.rand(6, 1, 8, 8)
    with pytest.raises(ValueError, match="labels"):
        model.matching_loss(y)
    loss = model.matching_loss(y, labels=torch.arange(6))
    loss.backward()
    assert model.transform.field.label_embed.weight.grad.abs().sum() > 0
    solver = {"method": "euler", "steps": 2}
    gen = torch.Generator().manual_seed(1)
    by_label = model.sample(4, generator=gen, labels=torch.tensor([1, 1, 7, 7]), guidance_scale=2.0, **solver)
    assert by_label.shape == (4, 1, 8, 8) and torch.isfinite(by_label).all()
    assert isinstance(model.transform.field, nn.Module) and not isinstance(model.transform.field, GuidedField)


def test_guidance_changes_samples_and_unconditional_models_refuse_labels():
    torch.manual_seed(0)
    model = small_conditional_cfm()
    solver = {"method": "euler", "steps": 2}
    draws = [model.sample(3, generator=torch.Generator().manual_seed(1), guidance_scale=w, **solver) for w in (0.0, 3.0)]
    assert not torch.allclose(draws[0], draws[1])
    plain = build_cfm((1, 8, 8), True, net={"base_channels": 8, "channel_mult": (1,), "attention_resolutions": ()})
    with pytest.raises(ValueError, match="class-conditional"):
        plain.sample(2, labels=torch.tensor([0, 1]), **solver)
    with pytest.raises(ValueError, match="image data"):
        build_cfm((2,), False, num_classes=3)
