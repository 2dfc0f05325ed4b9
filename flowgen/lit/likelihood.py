"""Maximum-likelihood training of exact-density models (NICE, RealNVP, Glow, FFJORD).

Loss: mean bits/dim of a dequantised batch for images (design.md section 3), mean negative
log-likelihood in nats for continuous toy data, plus the model's weighted penalties when it
has ``log_prob_with_penalties(x) -> (log_p [B], {name: scalar})`` (e.g. RNODE's kinetic
energy and Jacobian norm), each logged as ``train/<name>``.
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
        y = dequantize(x, self.num_levels, self._train_gen) if self.is_image else x
        with_penalties = getattr(self.model, "log_prob_with_penalties", None)
        log_p, penalties = with_penalties(y) if with_penalties is not None else (self.log_prob(y), {})
        if self.is_image:
            nll = bits_per_dim(log_p, self.num_dims, self.num_levels).mean()
        else:
            nll = -log_p.mean()
        self.log(f"train/{self.metric_name}", nll, batch_size=x.shape[0])
        for name, value in penalties.items():
            self.log(f"train/{name}", value, batch_size=x.shape[0])
        return nll + sum(penalties.values())
