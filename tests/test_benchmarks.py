"""The GPU check script runs end to end on whatever backend is here (a tiny CPU run): every
row written as it finishes, synthetic data for the image configs, one failing architecture
recorded without stopping the others."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# the U-Net cut down to what compiles in seconds on 2 cores: the check is of the script
SMALL = ["--steps", "2", "--warmup", "1", "--train-steps", "0", "--sample-num", "0",
         "--peak-n", "256", "--no-memory"]
TINY_UNET = ["--set", "unet:model.channels=(8,)", "--set", "unet:model.time_dim=16",
             "--set", "unet:train.batch_size=8"]


def _table_rows(md: str) -> dict:
    rows = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("arch", "U-Net"):
            rows[cells[0]] = cells
    return rows


# minutes of CPU; a script for a GPU machine; its pieces (bench, throughput) run by default
@pytest.mark.heavy
def test_gpu_check_writes_both_rows_with_synthetic_data(tmp_path, capsys):
    gc = _script("gpu_check")
    assert gc.main(["--only", "mlp,unet", "--synthetic", *SMALL, *TINY_UNET,
                    "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "jaxgen GPU check" in out and "| unet | synthetic data |" in out
    r = json.loads((tmp_path / "gpu_check.json").read_text())
    assert r["status"] == "done" and r["backend"] == "cpu"
    for name in ("mlp", "unet"):
        a = r["archs"][name]
        assert a["status"] == "ok" and a["params"] > 0
        for dt in ("float32", "bfloat16"):
            assert a[dt]["ms"] > 0 and 0 < a[dt]["peak_fraction"]
        assert a["sharded"]["ms"] > 0 and a["sharded"]["mesh"] == "fsdp:1"
        assert 0 <= a["bf16_flop_share"] <= 1
    unet = r["archs"]["unet"]
    assert unet["synthetic"] == "--synthetic" and "data.name=array" in unet["overrides"]
    # the U-Net's convolutions all run on bf16 operands in the bf16 step
    assert unet["bf16_flop_share"] > 0.95 and unet["bf16_flop_detail"]["total_flops"] > 0
    md = (tmp_path / "gpu_check.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| arch |"))
    assert "bf16 FLOP share" in header and "fsdp fp32 ms/step" in header
    rows = _table_rows(md)
    assert set(rows) == {"mlp", "unet"}
    col = [c.strip() for c in header.strip("|").split("|")]
    assert rows["unet"][col.index("data")] == "synthetic data"
    assert float(rows["unet"][col.index("bf16 FLOP share")]) > 0.95
    assert float(rows["mlp"][col.index("fp32 ms/step")]) > 0
    assert rows["mlp"][-1] == rows["unet"][-1] == "ok"


def test_gpu_check_a_failing_architecture_is_one_failed_row(tmp_path, capsys, monkeypatch):
    gc = _script("gpu_check")
    monkeypatch.setitem(gc.ARCHS, "bogus", "no_such_family/no_such_config")
    monkeypatch.setitem(gc.ARCHS, "badmesh", "flow_matching/toy2d")  # fails once it builds
    rc = gc.main(["--only", "bogus,badmesh,mlp", *SMALL, "--skip", "bf16,share,fsdp",
                  "--set", "badmesh:train.mesh=data:3", "--out", str(tmp_path),
                  "--json", str(tmp_path / "also.json")])
    assert rc == 1
    out = capsys.readouterr().out
    assert "bogus: failed in config: " in out and "badmesh: failed in float32: " in out
    assert "failed: bogus, badmesh" in out
    for f in ("gpu_check.json", "also.json"):
        r = json.loads((tmp_path / f).read_text())
        bogus, badmesh, mlp = (r["archs"][n] for n in ("bogus", "badmesh", "mlp"))
        assert bogus["status"] == "failed" and bogus["stage"] == "config"
        assert bogus["error"] and "Traceback" in bogus["traceback"]
        assert badmesh["status"] == "failed" and "train.mesh" in badmesh["error"]
        assert mlp["status"] == "ok" and mlp["float32"]["ms"] > 0  # ran after the failures
    rows = _table_rows((tmp_path / "gpu_check.md").read_text())
    assert rows["bogus"][-1].startswith("failed (config): ") and rows["mlp"][-1] == "ok"
    assert rows["badmesh"][-1].startswith("failed (float32): ")


def test_gpu_check_synthetic_data_when_fashion_mnist_is_absent(tmp_path):
    gc = _script("gpu_check")
    from jaxgen.kernel import config as config_lib

    cfg = config_lib.load_config("diffusion/ddpm_fashion_mnist", [
        f"data.source_dir={tmp_path / 'none'}", f"data.path={tmp_path / 'tfds'}"])
    pytest.importorskip("tensorflow_datasets")
    assert not gc.fashion_mnist_present(cfg.data)
    train, held_out = gc.synthetic_files(tmp_path, 40)
    import numpy as np
    with np.load(train) as z:
        assert z["x"].shape == (40, 28, 28, 1) and z["x"].dtype == np.uint8
        assert sorted(set(z["y"].tolist())) == list(range(10))
    with np.load(held_out) as z:
        assert z["x"].shape == (10, 28, 28, 1)


def test_gpu_check_set_overrides_per_architecture():
    gc = _script("gpu_check")
    sets = gc.parse_sets(["unet:model.channels=(8,)", "train.batch_size=8"], ["mlp", "unet"])
    assert sets == {"mlp": ["train.batch_size=8"],
                    "unet": ["model.channels=(8,)", "train.batch_size=8"]}
    with pytest.raises(ValueError):
        gc.parse_sets(["dcgan:train.steps=1"], ["mlp"])


def test_gpu_check_memory_table_rows_and_a_failed_size(tmp_path, monkeypatch):
    gc = _script("gpu_check")
    fake = {"params": 3.1e8, "mesh": "fsdp:8", "state_gib_per_device": 0.6, "total_gib": 3.2,
            "compile_s": 12.0}

    def subprocess_rows(size, per_device, timeout, devices_gb):
        if size == "1":
            raise RuntimeError("out of host memory")
        return [gc.memory_row(size, {**fake, "state": s}, devices_gb)
                for s in ("replicated", "sharded")]

    monkeypatch.setattr(gc, "memory_subprocess", subprocess_rows)
    report = gc.Report(str(tmp_path), None, {
        "device": "cpu", "backend": "cpu", "device_count": 1, "jax": "x", "fsdp_note": ""})
    report.data["memory"].update(source="XLA:CPU estimates", per_device=32)
    args = type("Args", (), {"memory_per_device": 32})()
    gc.memory_table(["0.3", "1"], args, report, in_process=False, deadline=1e18)
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["memory"]["rows"]
    assert [(m["size"], m["status"]) for m in rows] == [
        ("0.3", "ok"), ("0.3", "ok"), ("1", "failed")]
    assert rows[0]["fits"] == {"H100 (80 GB)": "yes", "TPU v5e (16 GB)": "yes"}
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| ~0.3B | 310M | sharded | fsdp:8 |" in md
    assert "| ~1B | - |" in md and "failed: RuntimeError: out of host memory" in md
