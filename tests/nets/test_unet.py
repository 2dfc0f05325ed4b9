"""ADM U-Net and time MLP: shapes, zero-initialised output, conditioning, checkpointing."""

import pytest
import torch

from flowgen.nets.time_embedding import sinusoidal_embedding
from flowgen.nets.time_mlp import TimeMLP
from flowgen.nets.unet import UNet


def small_unet(**kwargs):
    torch.manual_seed(0)
    return UNet(in_channels=1, image_size=8, base_channels=16, channel_mult=(1, 2), num_res_blocks=1,
                attention_resolutions=(4,), num_heads=2, **kwargs)


def perturb(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return module


def test_untrained_unet_is_the_zero_field_with_the_input_shape():
    net = small_unet()
    x = torch.randn(3, 1, 8, 8)
    out = net(torch.rand(3), x)
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(x))


def test_time_and_labels_change_the_output_and_null_label_is_default():
    net = perturb(small_unet(num_classes=10)).eval()
    x = torch.randn(2, 1, 8, 8)
    t = torch.full((2,), 0.3)
    assert not torch.allclose(net(t, x), net(t + 0.4, x))
    labels = torch.tensor([1, 7])
    assert not torch.allclose(net(t, x, labels), net(t, x))
    torch.testing.assert_close(net(t, x), net(t, x, torch.full((2,), 10)))


def test_gradient_checkpointing_gives_the_same_gradients():
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    grads = []
    for flag in (False, True):
        net = perturb(small_unet(grad_checkpoint=flag))
        torch.manual_seed(1)
        net(t, x).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    torch.testing.assert_close(grads[0], grads[1])


def test_image_size_not_divisible_by_the_levels_fails_clearly():
    with pytest.raises(ValueError, match="divisible by 4"):
        UNet(in_channels=3, image_size=10, channel_mult=(1, 2, 2))


def test_sinusoidal_embedding_and_time_mlp():
    emb = sinusoidal_embedding(torch.tensor([0.0, 0.5]), 7)
    assert emb.shape == (2, 7) and torch.equal(emb[0, :3], torch.ones(3))
    mlp = TimeMLP(2, 16, 2)
    assert mlp(torch.tensor(0.5), torch.randn(5, 2)).shape == (5, 2)
