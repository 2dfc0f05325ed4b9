"""ADM-style U-Net velocity field v(t, x, y) for images (Dhariwal & Nichol 2021; torchcfm).

Residual blocks (GroupNorm -> SiLU -> conv, time embedding added, dropout, zero-initialised
second conv), self-attention at chosen resolutions, channel multipliers per level, and
optional class conditioning with a null label (index ``num_classes``) for classifier-free
guidance. Input and output [B, C, H, W]; the output conv is zero-initialised, so the
untrained field is v = 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from flowgen.nets.time_embedding import sinusoidal_embedding


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, channels), channels)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """h = x + conv(drop(SiLU(GN(conv(SiLU(GN(x))) + W temb)))), with a 1x1 skip when channels change."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(_norm(in_ch), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, out_ch))
        self.out_layers = nn.Sequential(
            _norm(out_ch), nn.SiLU(), nn.Dropout(dropout), _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        )
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers(x) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.out_layers(h)


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions, residual, zero-initialised output."""

    def __init__(self, channels: int, num_heads: int) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"attention: {channels} channels not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, h * w))
        # [b, 3, heads, hw, c/heads] made contiguous: SDPA's fused kernels (flash on CPU) need a
        # unit stride on the last dim, else it falls back to the math path (hw x hw matrices)
        qkv = qkv.reshape(b, 3, self.num_heads, c // self.num_heads, h * w).transpose(-1, -2).contiguous()
        q, k, v = qkv.unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # [b, heads, hw, c/heads]
        out = out.transpose(-1, -2).reshape(b, c, h * w)
        return x + self.proj(out).reshape(b, c, h, w)


class UNet(nn.Module):
    """v(t, x, y): ``x`` [B, C, H, W], ``t`` [B] in [0, 1], ``y`` int labels [B] or None.

    Args:
        in_channels: image channels C. base_channels: width of the first level.
        channel_mult: width multiplier per level (len = number of levels; H must be divisible
            by 2**(levels - 1)). num_res_blocks: residual blocks per level.
        attention_resolutions: feature-map sizes (e.g. 16) that get self-attention.
        num_heads, dropout. num_classes: None for unconditional, else labels 0..num_classes-1
            plus the null label num_classes (used when y is None).
        image_size: H = W, to place attention and check divisibility.
        grad_checkpoint: recompute blocks in backward to save memory.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        base_channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (16,),
        num_heads: int = 4,
        dropout: float = 0.0,
        num_classes: int | None = None,
        grad_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        levels = len(channel_mult)
        if image_size % 2 ** (levels - 1):
            raise ValueError(
                f"U-Net with {levels} levels needs an image size divisible by {2 ** (levels - 1)}, got {image_size}"
            )
        self.base_channels = base_channels
        self.num_classes = num_classes
        self.grad_checkpoint = grad_checkpoint
        emb_dim = 4 * base_channels
        self.time_embed = nn.Sequential(nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_embed = nn.Embedding(num_classes + 1, emb_dim) if num_classes is not None else None

        self.input_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch, res = [base_channels], base_channels, image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                blocks = [ResBlock(ch, mult * base_channels, emb_dim, dropout)]
                ch = mult * base_channels
                if res in attention_resolutions:
                    blocks.append(Attention(ch, num_heads))
                self.down.append(nn.ModuleList(blocks))
                skips.append(ch)
            if level < levels - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
                res //= 2
        self.middle = nn.ModuleList(
            [ResBlock(ch, ch, emb_dim, dropout), Attention(ch, num_heads), ResBlock(ch, ch, emb_dim, dropout)]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for block in range(num_res_blocks + 1):
                blocks: list[nn.Module] = [ResBlock(ch + skips.pop(), mult * base_channels, emb_dim, dropout)]
                ch = mult * base_channels
                if res in attention_resolutions:
                    blocks.append(Attention(ch, num_heads))
                if level > 0 and block == num_res_blocks:
                    blocks.append(nn.Upsample(scale_factor=2, mode="nearest"))
                    blocks.append(nn.Conv2d(ch, ch, 3, padding=1))
                    res *= 2
                self.up.append(nn.ModuleList(blocks))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), _zero(nn.Conv2d(ch, in_channels, 3, padding=1)))

    def _run(self, blocks: nn.ModuleList, h: Tensor, emb: Tensor) -> Tensor:
        for block in blocks:
            if isinstance(block, (ResBlock, Attention)):
                if self.grad_checkpoint and self.training:
                    h = checkpoint(block, h, emb, use_reentrant=False)
                else:
                    h = block(h, emb)
            else:
                h = block(h)
        return h

    def forward(self, t: Tensor, x: Tensor, y: Tensor | None = None) -> Tensor:
        t = torch.as_tensor(t, device=x.device).expand(x.shape[0])
        emb = self.time_embed(sinusoidal_embedding(t, self.base_channels))
        if self.label_embed is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.num_classes, device=x.device, dtype=torch.long)
            emb = emb + self.label_embed(y)
        h = self.input_conv(x)
        skips = [h]
        for blocks in self.down:
            h = self._run(blocks, h, emb)
            skips.append(h)
        h = self._run(self.middle, h, emb)
        for blocks in self.up:
            h = self._run(blocks, torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)
