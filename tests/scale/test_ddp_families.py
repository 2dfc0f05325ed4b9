"""Two-process DDP on the CPU for every model family, launched the way torchrun or srun do
(processes created outside Lightning, LOCAL_RANK set): training completes and writes results,
ranks draw different training noise, ActNorm starts identical on both ranks, and the 2-process
test bpd equals a 1-process evaluation of the same checkpoint (unpadded eval shards)."""

import json
import os
import socket
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.multiprocessing as mp

from flowgen.flows.actnorm import actnorms
from flowgen.training import train

ROOT = Path(__file__).resolve().parents[2]
COMMON = ["debug=default", "~callbacks.rich_progress_bar", "~callbacks.rich_model_summary", "~callbacks.sample_figures",
          "fid=none", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
          "print_config=false", "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
          "trainer.num_sanity_val_steps=0", "trainer.limit_test_batches=1.0", "data.batch_size=32",
          # 359 test digits in 3 batches: rank 0 gets batches 0 and 2, rank 1 batch 1 (uneven, unpadded)
          "data.eval_batch_size=128"]
RK4 = "{method: rk4, step_size: 0.5}"
FAMILIES = {
    "nice": ["model=nice", "model.flow.hidden_dim=32", "model.flow.num_hidden_layers=1", "model.flow.num_couplings=4"],
    "realnvp": ["model=realnvp", "model.flow.features=8", "model.flow.num_blocks=1"],
    "glow": ["model=glow", "model.flow.levels=2", "model.flow.steps=2", "model.flow.hidden_channels=8",
             "model.data_init_samples=64"],
    "ffjord": ["model=ffjord", "model.flow.hidden_dims=[8]", f"model.flow.train_solver={RK4}",
               f"model.flow.eval_solver={RK4}"],
    "cfm": ["model=cfm", "model.flow.net={base_channels: 8, channel_mult: [1, 2], num_res_blocks: 1, "
            "attention_resolutions: []}", "model.flow.eval_solver.method=rk4", "+model.flow.eval_solver.step_size=0.5"],
}


def compose(overrides: list[str], output_dir: Path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
    return cfg


class RecordRank(pl.Callback):
    """Saves, per rank, the first training noise it would draw and its ActNorm state at the start."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx:
            return
        generator = torch.Generator().set_state(pl_module._train_gen.get_state())
        norms = actnorms(pl_module.model)
        torch.save({"noise": torch.rand(16, generator=generator),
                    "actnorm": [torch.cat([m.bias.flatten(), m.log_scale.flatten()]).detach().clone() for m in norms]},
                   Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.pt")


def _worker(rank: int, port: int, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", NODE_RANK="0",
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    for family, options in FAMILIES.items():
        out = Path(root) / family
        cfg = compose([*COMMON, *options, "trainer=ddp_cpu", "trainer.strategy=ddp",
                       "+callbacks.record._target_=test_ddp_families.RecordRank"], out)
        train(cfg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_process_ddp_of_every_family_matches_one_process(tmp_path):
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    for family, options in FAMILIES.items():
        out = tmp_path / family
        ddp = json.loads((out / "results.json").read_text())
        assert (out / "checkpoints" / "last.ckpt").is_file() and ddp["train/images_per_s"] > 0
        ranks = [torch.load(out / f"rank{r}.pt") for r in range(2)]
        assert not torch.equal(ranks[0]["noise"], ranks[1]["noise"]), family
        for a, b in zip(ranks[0]["actnorm"], ranks[1]["actnorm"]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert (len(ranks[0]["actnorm"]) > 0) == (family == "glow")

        one_process = [*COMMON, *options, "train=false", f"ckpt_path={ddp['ckpt_path']}"]
        single = train(compose(one_process, tmp_path / f"{family}_1p"))
        assert single["test/bpd"] == pytest.approx(ddp["test/bpd"], rel=1e-6, abs=0), family
