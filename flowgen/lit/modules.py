"""LightningModule classes by the name stored in checkpoints (``checkpoint['flowgen']['module']``)."""

from __future__ import annotations

from flowgen.lit.flow_matching import FlowMatchingModule
from flowgen.lit.likelihood import LikelihoodModule
from flowgen.lit.module import GenerativeModule

MODULES: dict[str, type[GenerativeModule]] = {
    LikelihoodModule.module_type: LikelihoodModule,
    FlowMatchingModule.module_type: FlowMatchingModule,
}
