"""load_model refuses corrupt, truncated, foreign and code-executing checkpoints with clear errors."""

import os
import pickle

import pytest
import torch

from flowgen import load_model
from flowgen.api import CheckpointError
from flowgen.lit.likelihood import LikelihoodModule

DIGITS = {"name": "digits", "shape": [1, 8, 8], "num_levels": 17, "is_image": True}
FLOW = {"name": "nice", "hidden_dim": 32, "num_hidden_layers": 1}


class RunsCode:
    """Unpickling this would call os.system: a weights-only loader must refuse it."""

    def __reduce__(self):
        return (os.system, ("touch pwned_by_checkpoint",))


def saved_module(path):
    module = LikelihoodModule(flow=FLOW, data=DIGITS)
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "flowgen": {"module": "likelihood"}}
    torch.save(checkpoint, path)
    return module


def test_round_trip_of_a_flowgen_checkpoint(tmp_path):
    module = saved_module(tmp_path / "m.ckpt")
    loaded = load_model(tmp_path / "m.ckpt")
    assert not loaded.training
    k = torch.randint(0, 17, (4, 1, 8, 8))
    torch.testing.assert_close(loaded.bits_per_dim(k), module.bits_per_dim(k))


def test_unsafe_checkpoint_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.ckpt", "wb") as f:
        pickle.dump({"flowgen": RunsCode(), "state_dict": {}}, f)
    with pytest.raises(CheckpointError, match="run code"):
        load_model(tmp_path / "evil.ckpt")
    assert not (tmp_path / "pwned_by_checkpoint").exists()


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    saved_module(tmp_path / "m.ckpt")
    data = (tmp_path / "m.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(tmp_path / "cut.ckpt")


def test_garbage_and_foreign_files_give_clear_errors(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_model(tmp_path / "junk.ckpt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a flowgen checkpoint"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_model(tmp_path / "missing.ckpt")
