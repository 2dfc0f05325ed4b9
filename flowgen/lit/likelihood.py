"""Maximum-likelihood training of exact-density models (NICE, RealNVP, Glow, FFJORD).

Loss: mean bits/dim of a dequantised batch for images (design.md section 3), mean negative
log-likelihood in nats for continuous toy data.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from flowgen.data.quantization import dequantize
from flowgen.lit.module import GenerativeModule
from flowgen.metrics.bpd import bits_per_dim


class LikelihoodModule(GenerativeModule):
    """Trains ``self.model`` by maximising log p on training data."""

    module_type = "likelihood"

    def training_loss(self, batch: Any) -> Tensor:
        x = batch[0]
        if self.is_image:
            y = dequantize(x, self.num_levels, self._train_gen)
            loss = bits_per_dim(self.log_prob(y), self.num_dims, self.num_levels).mean()
        else:
            loss = -self.log_prob(x).mean()
        self.log(f"train/{self.metric_name}", loss, batch_size=x.shape[0])
        return loss
