"""flowgen: flow-based generative models of images, from NICE to flow matching.

The public entry point is :func:`flowgen.load_model`; see ``flowgen/api.py``.
"""

from flowgen.api import load_model

__all__ = ["load_model"]
__version__ = "0.1.0"
