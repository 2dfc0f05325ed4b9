"""python -m flowgen.report: Markdown table (stdout + file) and PNG from results.json files."""

import json

from flowgen.report import main


def test_report_tabulates_runs_and_draws_a_figure(tmp_path, capsys):
    a = {"test/bpd": 3.41, "test/dequant_samples": 1.0, "test/fid_inception": 45.2, "test/fid_num_samples": 50000.0,
         "test/fid_temperature": 0.7, "test/fid_nfe": 1.0, "num_params": 44_000_000, "train_time_s": 7200.0,
         "test/fid_inception_protocol": "Inception-v3 pool3 2048-d, legacy TF1 resize; ...", "ckpt_path": "x"}
    b = {"test/bpd": 3.02, "test/nfe": 140.0, "test/fid_inception": 6.1, "num_params": 35_000_000,
         "train_time_s": 90.0, "train/images_per_s": 850.0}
    for name, results in (("glow", a), ("fm", b)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    table = main([str(tmp_path / "glow"), str(tmp_path / "fm"), "--out", str(tmp_path / "out" / "cmp")])
    assert table in capsys.readouterr().out
    assert (tmp_path / "out" / "cmp.md").read_text() == table
    assert (tmp_path / "out" / "cmp.png").stat().st_size > 1000
    header, _, glow, fm = table.splitlines()[:4]
    assert "test bpd" in header and "FID inception" in header and "images/s" in header and "NFE (bpd)" in header
    assert glow.startswith("| glow |") and "3.41" in glow and "44.00M" in glow and "120.0 min" in glow
    assert "| fm |" in fm and "140" in fm and "850" in fm and " - |" in fm  # missing values show as -
    assert "legacy TF1 resize" in table
