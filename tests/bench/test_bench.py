"""flowgen.bench at tiny sizes: the CLI and its JSON, the timer, the table, equal model sizes
against the peers (when the ``bench`` extra is installed), and runs without a peer. No
timing assertions: the bench is a measurement tool."""

import json
import os
import subprocess
import sys

import pytest
import torch

from flowgen.bench import cfm2d, cfm_unet, cnf2d, glow, peers, sampling
from flowgen.bench.config import BenchConfig
from flowgen.bench.table import Row, markdown, num_parameters
from flowgen.bench.timing import median, time_interleaved

QUICK = BenchConfig(torch.device("cpu"), clock="cpu", steps=2, warmup=1, quick=True, train_steps=0)


def test_median_of_known_sequences():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError):
        median([])


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_interleaved_timer_alternates_sides_and_times_only_after_warmup(clock):
    calls = []
    sides = {"a": lambda i: calls.append(("a", i)), "b": lambda i: calls.append(("b", i))}
    times = time_interleaved(sides, steps=3, warmup=2, device=torch.device("cpu"), clock=clock)
    assert calls == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2), ("b", 3), ("a", 3), ("a", 4), ("b", 4)]
    assert {name: len(values) for name, values in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for values in times.values() for t in values)


def test_rows_give_ratios_targets_and_dashes_for_missing_peers():
    rows = [Row("w", "step", "ms", 2.0, 4.0, 0.8), Row("w", "alone", "ms", 3.0), Row("w", "slow", "ms", 5.0, 4.0, 1.0)]
    assert rows[0].ratio == 0.5 and rows[0].met is True
    assert rows[1].ratio is None and rows[1].met is None
    assert rows[2].met is False
    table = markdown(rows).splitlines()
    assert table[0].startswith("| workload | measure |") and len(table) == 5
    assert table[3] == "| w | alone | ms | 3 | - | - | - | - |"
    assert "| 0.5 | <= 0.8 | yes |" in table[2]
    assert markdown([Row("glow", "max |x|", "abs", 1.0)]).splitlines()[2].count(" | ") == 7  # pipes escaped


def test_cli_runs_cfm2d_quick_and_writes_the_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "flowgen.bench", "cfm2d", "--steps", "3", "--warmup", "1", "--quick",
           "--train-steps", "8", "--json", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "| cfm2d | OT-CFM training step | ms |" in result.stdout
    payload = json.loads(out.read_text())
    meta = payload["meta"]
    assert meta["device"] == "cpu" and meta["threads"] == 1 and meta["clock"] == "cpu" and meta["steps"] == 3
    rows = {row["measure"]: row for row in payload["rows"]}
    assert set(rows) >= {"parameters", "OT-CFM training step", "I-CFM training step"}
    assert all(set(row) >= {"workload", "measure", "unit", "flowgen", "peer", "ratio", "target", "met"} for row in rows.values())
    assert rows["OT-CFM training step"]["flowgen"] > 0 and rows["OT-CFM training step"]["target"] == 0.5
    w2 = rows["OT-CFM W2 to moons after 8 steps"]
    assert 0 < w2["flowgen"] < 20
    if meta["peers"]["torchcfm"] is not None:
        assert rows["parameters"]["flowgen"] == rows["parameters"]["peer"] == 8706
        assert rows["OT-CFM training step"]["ratio"] > 0
    else:
        assert rows["OT-CFM training step"]["peer"] is None


def test_flowgen_and_torchcfm_models_have_equal_sizes():
    pytest.importorskip("torchcfm")
    assert num_parameters(cfm2d.build_flowgen("ot").transform.field) == num_parameters(cfm2d.build_peer("ot")[0])
    unet, peer_unet = cfm_unet.build_flowgen().transform.field, cfm_unet.build_peer()[0]
    assert num_parameters(unet) == num_parameters(peer_unet) == 1_075_361


def test_glow_sizes_differ_only_by_the_zero_conv_output_scales():
    pytest.importorskip("normflows")
    size = glow.sizes(quick=True)
    ours = glow.build_flowgen(size["levels"], size["steps"], size["hidden"])
    peer = glow.build_peer(size["levels"], size["steps"], size["hidden"])
    logs = sum(m.logs.numel() for m in ours.modules() if hasattr(m, "logscale_factor"))
    assert num_parameters(ours) - num_parameters(peer) == logs


def test_workloads_without_peers_run_flowgen_alone(monkeypatch, capsys):
    for name in ("torchcfm", "torchcfm.conditional_flow_matching", "torchcfm.models.models", "zuko"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    monkeypatch.setattr(peers, "_reported", set())
    rows = cfm2d.run(QUICK) + cnf2d.run(QUICK)
    assert all(row.peer is None and row.ratio is None for row in rows)
    assert {row.measure for row in rows} >= {"OT-CFM training step", "parameters"}
    assert "pip install -e '.[bench]'" in capsys.readouterr().err
    assert "| - | - |" in markdown(rows)


def test_glow_quick_inverts_to_float32_precision():
    rows = {row.measure: row for row in glow.run(QUICK)}
    error = rows["max inversion error |x - f^-1(f(x))|"]
    assert error.flowgen < 1e-4
    if error.peer is not None:
        assert error.peer < 1e-4


def test_cnf2d_quick_reports_nfe_and_nll():
    rows = {row.measure: row for row in cnf2d.run(QUICK)}
    forward = rows["NFE per iteration, forward (mean over timed)"]
    assert forward.flowgen >= 6  # at least one dopri5 step
    nll = next(row for name, row in rows.items() if name.startswith("test NLL"))
    assert 0 < nll.flowgen < 20


def test_sampling_quick_measures_images_per_second(monkeypatch):
    monkeypatch.setattr(sampling, "FAMILIES", ("glow",))
    rows = sampling.run(QUICK)
    assert [row.unit for row in rows] == ["images/s", "images/s"]
    assert all(row.flowgen > 0 and row.peer is None for row in rows)
