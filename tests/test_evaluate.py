"""python -m flowgen.evaluate: reproduces a run's test metrics from its checkpoint; writes grids and PNGs."""

import json

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from flowgen.evaluate import CONF_DIR, evaluate
from flowgen.training import train


def compose_evaluate(tmp_path, *overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("evaluate", overrides=[f"paths.data_dir={tmp_path}", *overrides])
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
    return cfg


def test_evaluate_config_requires_a_checkpoint_and_known_metrics(tmp_path):
    cfg = compose_evaluate(tmp_path, f"ckpt_path={tmp_path / 'none.ckpt'}", "metrics=[bpd,kid]")
    with pytest.raises(ValueError, match="kid"):
        evaluate(cfg)
    with pytest.raises(FileNotFoundError, match="none.ckpt"):
        evaluate(compose_evaluate(tmp_path, f"ckpt_path={tmp_path / 'none.ckpt'}"))


@pytest.mark.slow
def test_evaluate_reproduces_the_test_bpd_and_fid_of_a_short_run(compose, tmp_path):
    run = train(compose("trainer.max_epochs=2", "model.flow.hidden_dim=64", "model.flow.num_hidden_layers=2",
                        "callbacks.fid.every_n_val_epochs=1", "callbacks.fid.num_samples=300",
                        f"paths.data_dir={tmp_path}", output_dir=tmp_path / "run"))
    assert {"val/fid_digits", "test/fid_digits", "test/fid_num_samples", "test/fid_digits_protocol"} <= set(run)
    assert run["test/fid_num_samples"] == 2000 and run["val/fid_num_samples"] == 300
    assert json.loads((tmp_path / "run" / "results.json").read_text())["test/fid_digits"] == run["test/fid_digits"]
    assert len((tmp_path / "run" / "fid.jsonl").read_text().splitlines()) == 3  # 2 val epochs + test

    results = evaluate(compose_evaluate(tmp_path, f"ckpt_path={run['ckpt_path']}", "save_pngs=5", "grid_samples=16"))
    assert results["test/bpd"] == pytest.approx(run["test/bpd"], abs=1e-6)
    assert results["test/dequant_samples"] == 1
    assert results["test/fid_digits"] == pytest.approx(run["test/fid_digits"], rel=1e-5)
    assert results["test/fid_digits_protocol"] == run["test/fid_digits_protocol"]
    out = tmp_path / "eval"
    assert json.loads((out / "results.json").read_text()) == results
    assert (out / "samples" / "grid.png").is_file() and len(list((out / "generated").glob("*.png"))) == 5

    more = evaluate(compose_evaluate(tmp_path, f"ckpt_path={run['ckpt_path']}", "metrics=[bpd]", "dequant_samples=4",
                                     "grid_samples=0"))
    assert more["test/dequant_samples"] == 4 and "test/fid_digits" not in more
    assert more["test/bpd"] < run["test/bpd"] + 0.02  # importance weighting tightens the bound
