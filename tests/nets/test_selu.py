"""flowgen's SELU: the function and gradients of torch.nn.SELU, on a faster CPU path."""

import pytest
import torch

from flowgen.nets.mlp import SELU, activation


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_selu_matches_torch_in_value_and_gradient(dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([10 * torch.randn(500, generator=gen), torch.tensor([0.0, -1e-8, 1e-8, -80.0, -1e4, 50.0])]).to(dtype)
    mine, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, y_ref = SELU()(mine), torch.nn.SELU()(ref)
    tol = 2e-7 if dtype == torch.float32 else 1e-15
    torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
    grad = torch.randn(x.shape, generator=gen, dtype=dtype)
    y.backward(grad)
    y_ref.backward(grad)
    torch.testing.assert_close(mine.grad, ref.grad, rtol=0, atol=0)


def test_selu_second_derivatives_and_registry():
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(SELU(), (x,))
    assert torch.autograd.gradgradcheck(SELU(), (x,))
    assert isinstance(activation("selu"), SELU)
