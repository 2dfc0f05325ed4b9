"""Benchmarks of flowgen against peer libraries: ``python -m flowgen.bench [WORKLOAD...]``.

Each workload runs flowgen's side and, when the ``bench`` extra is installed, the peer
library's side of the same task in one process: identical pre-generated inputs, equal model
sizes (parameter counts reported), a fixed thread count, warm-up steps excluded, both sides
timed interleaved step by step, and the median over the timed steps reported with the ratio
flowgen / peer (lower is better for flowgen). On a shared, noisy machine the ratios, not the
absolute times, are the result. Each side trains with its own library's usual optimiser at the
same settings: flowgen's ``build_optimizer`` (Adam, fused on CPU), the peer's
``torch.optim.Adam`` as in its examples.

- ``timing``: thread pinning, device sync, interleaved warm-up + median timer.
- ``table``: result rows, the Markdown table and the JSON file.
- ``peers``: optional imports of torchcfm, normflows and zuko.
- ``cfm2d``, ``cfm_unet``, ``glow``, ``cnf2d``, ``sampling``: one workload each.
"""
