"""The GPU check script runs end to end on whatever backend is here (a tiny CPU run)."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_check_prints_one_table_and_consistent_figures(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert _script("gpu_check").main(["--only", "mlp", "--steps", "2", "--train-steps", "30",
                                      "--sample-num", "8", "--peak-n", "256",
                                      "--json", str(out)]) == 0
    assert "jaxgen GPU check" in capsys.readouterr().out
    r = json.loads(out.read_text())
    mlp = r["archs"]["mlp"]
    for dt in ("float32", "bfloat16"):
        assert mlp[dt]["ms"] > 0 and 0 < mlp[dt]["peak_fraction"]
    assert abs(mlp["trainer_ratio"] - mlp["trainer_ms"] / mlp["float32"]["ms"]) < 1e-2
    assert mlp["sampler"]["samples_per_s"] > 0 and r["backend"] == "cpu"
