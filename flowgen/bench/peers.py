"""Optional imports of the peer libraries (the ``bench`` extra: torchcfm, normflows, zuko).

A missing peer is not an error: the workload runs flowgen's side alone and its peer and
ratio columns show "-". The message says how to install the extra, once per library.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata
from types import ModuleType

PEERS = ("torchcfm", "normflows", "zuko")
_reported: set[str] = set()


def import_peer(module: str) -> ModuleType | None:
    """``importlib.import_module(module)``, or None (with a one-time note on stderr) when the
    peer package it belongs to is not installed."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if package not in _reported:
            _reported.add(package)
            print(f"[flowgen.bench] peer library {package!r} unavailable ({err}); install the extra with "
                  f"pip install -e '.[bench]'. Its peer and ratio columns show '-'.", file=sys.stderr)
        return None


def peer_versions() -> dict[str, str | None]:
    """{package: installed version or None} for every peer library."""
    versions: dict[str, str | None] = {}
    for package in PEERS:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions
