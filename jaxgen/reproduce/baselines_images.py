"""baselines-images: EDM against DDIM and DPM-Solver++ at equal NFE, consistency models at
one and two steps beside their EDM teacher, and a DiT against the U-Net at equal training
wall time, on Fashion-MNIST.

Every model is trained by the one trainer for the same wall time (`WALL` seconds at
--budget 1, converted into steps by a short calibration run of each config's own ms/step,
kept in runs/record.json so that --reuse-runs restores the same runs), then sampled from
the same noise seeds, and scored by the Fréchet distance (FD) of N samples in jaxgen's
classifier features against the 10 000 test images, beside the floor (N real training
images against the same statistics).

* **EDM's sampler** (Karras et al., 2022): configs/diffusion/edm_fashion_mnist.py sampled by
  Heun (Algorithm 1) at N = 3, 5, 9, 18 levels (NFE 5, 9, 17, 35), and
  configs/diffusion/ddpm_fashion_mnist.py (the same U-Net, ε prediction, T = 1000) by DDIM
  (η = 0) and DPM-Solver++(2M) at the same NFE.
* **Consistency models** (Song et al., 2023): configs/diffusion/consistency_fashion_mnist.py
  trained alone (CT, its N(k) schedule over the run's own steps) and distilled from the EDM
  run above (CD, objective.teacher_workdir), each sampled in 1 and 2 steps, beside the
  teacher's Heun at NFE 35.
* **DiT against the U-Net** (Peebles & Xie, 2023): flow matching with
  configs/flow_matching/fashion_mnist.py's U-Net and with
  configs/flow_matching/dit_fashion_mnist.py's DiT (patch 4, 6 adaLN-Zero blocks of width
  192), trained for the same wall time, sampled by Heun x 25 (NFE 50).
"""

from __future__ import annotations

import json
import time

import jax
import numpy as np

from jaxgen import viz

TITLE = ("Fashion-MNIST baselines: EDM's Heun sampler against DDIM and DPM-Solver++, "
         "consistency models at 1 and 2 steps, and a DiT against the U-Net at equal wall time")
CLAIM = ("Karras et al. (2022): EDM's Heun sampler needs fewer network evaluations than DDIM "
         "for the same image quality. Song et al. (2023), Table 1: consistency distillation "
         "samples in one step and better in two (CIFAR-10 FID 3.55; 2.93), and beats "
         "consistency training (8.70; 5.83). Peebles & Xie (2023): a transformer backbone (DiT) is "
         "a drop-in replacement for the U-Net of a diffusion or flow model.")

WALL = 600.0                        # seconds of training per model at --budget 1
CALIBRATION = 12
NFES = (5, 9, 17, 35)
N = 256                             # samples per FD cell
FM_STEPS = 25                       # Heun x 25: NFE 50 for the backbone comparison
COMMON = ("train.progress=false", "train.pictures=false", "train.sample_every=0")
CONFIGS = {"edm": "diffusion/edm_fashion_mnist.py", "ddpm": "diffusion/ddpm_fashion_mnist.py",
           "unet": "flow_matching/fashion_mnist.py", "dit": "flow_matching/dit_fashion_mnist.py",
           "ct": "diffusion/consistency_fashion_mnist.py",
           "cd": "diffusion/consistency_fashion_mnist.py"}
FAST = {"edm": ("model.channels=(8, 16)", "model.time_dim=16", "model.groups=4"),
        "ddpm": ("model.channels=(8, 16)", "model.time_dim=16", "model.groups=4",
                 "objective.num_steps=50"),
        "unet": ("model.channels=(8, 16)", "model.time_dim=16", "model.groups=4"),
        "dit": ("model.depth=1", "model.hidden=24", "model.num_heads=2"),
        "ct": ("model.channels=(8, 16)", "model.time_dim=16", "model.groups=4"),
        "cd": ("model.channels=(8, 16)", "model.time_dim=16", "model.groups=4")}
FAST_IMAGES = 128


def _train(report, budget, name, data, extra=()):
    """(experiment, EMA params, run info, workdir) of CONFIGS[name] trained for its share of
    the wall time; CT's N(k) schedule spans the steps it gets."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.reproduce.runs import steps_for_wall, train_run
    from jaxgen.runner.state import param_count
    over = [*COMMON, *data, *extra, *(FAST[name] if budget.fast else ())]
    cfg = config_lib.load_config(CONFIGS[name], over)
    steps, ms = steps_for_wall(report, name, cfg, WALL * budget.scale, CALIBRATION,
                               budget.fast)
    if name == "ct":
        over.append(f"objective.schedule_steps={steps}")
    exp, params, summary, wd = train_run(report, name, CONFIGS[name], over, steps=steps,
                                         batch=int(cfg.train.batch_size), seed=budget.seed)
    return exp, params, {"steps": steps, "ms_per_step": ms, "batch": int(cfg.train.batch_size),
                         "train_s": summary["train_seconds"],
                         "params": param_count(params["model"])}, wd


def run(report, budget):
    from jaxgen.data import get_dataset
    from jaxgen.eval import classifier as clf
    from jaxgen.reproduce.runs import feature_classifier, tiny_images
    n, seed = budget.pick(N, 16), budget.seed
    data = tiny_images(report, CONFIGS["unet"], FAST_IMAGES) if budget.fast else []
    runs = {name: _train(report, budget, name, data) for name in CONFIGS if name != "cd"}
    runs["cd"] = _train(report, budget, "cd", data,
                        [f"objective.teacher_workdir={runs['edm'][3]}"])
    cl_params, cl_info = feature_classifier(report, budget.fast)
    ref = clf.reference_stats(cl_params, report.path("runs") / "classifier" if budget.fast
                              else None, n=budget.pick(10000, 200))
    key = jax.random.key(seed + 31)
    cells, pics = {}, {}

    def cell(model, label, nfe, **options):
        exp, params = runs[model][:2]
        t0 = time.perf_counter()
        x = exp.sample(params, key, n, chunk=min(n, 128), **options)
        cells[(model, label)] = {"nfe": nfe, "sample_s": time.perf_counter() - t0,
                                 "fd": clf.sample_quality(cl_params, x, ref=ref)["fd"]}
        pics[(model, label)] = x[:10]

    for nfe in budget.pick(NFES, (5,)):
        cell("edm", f"Heun, N = {(nfe + 1) // 2}", nfe, sampler="heun", steps=(nfe + 1) // 2)
        cell("ddpm", f"DDIM x {nfe}", nfe, sampler="ddim", steps=nfe)
        cell("ddpm", f"DPM-Solver++(2M) x {nfe}", nfe, sampler="dpm_solver", steps=nfe)
    for model in ("cd", "ct"):
        for steps in (1, 2):
            cell(model, f"{steps} step{'s' * (steps > 1)}", steps, steps=steps)
    fm_steps = budget.pick(FM_STEPS, 2)
    for model in ("unet", "dit"):
        cell(model, f"Heun x {fm_steps}", 2 * fm_steps, method="heun", steps=fm_steps)
    real = get_dataset(runs["unet"][0].config.data, "train").source.get(np.arange(n))["x"]
    floor = clf.sample_quality(cl_params, real, ref=ref)["fd"]
    _write(report, budget, runs, cells, pics, floor, n, cl_info, int(ref["n"]), fm_steps)


def _write(report, budget, runs, cells, pics, floor, n, cl_info, n_ref, fm_steps):
    wall = WALL * budget.scale
    dm = runs["dit"][0].config.model
    info = {m: r[2] for m, r in runs.items()}
    teacher = max(c["nfe"] for (m, _), c in cells.items() if m == "edm")
    names = {"cd": "CD (from the EDM run)", "ct": "CT", "edm": "EDM (the teacher)"}
    report.table(("model", "sampler", "NFE", "FD", "sampling s"),
                 [(m.upper(), label, c["nfe"], f"{c['fd']:.2f}", f"{c['sample_s']:.1f}")
                  for (m, label), c in sorted(cells.items(), key=lambda kv: kv[1]["nfe"])
                  if m in ("edm", "ddpm")] + [("real training images (floor)", "-", "-",
                                                f"{floor:.2f}", "-")],
                 f"EDM against the DDPM at equal NFE: FD of {n} samples per cell against the "
                 f"first {n_ref} test images in jaxgen's classifier features (test accuracy "
                 f"{cl_info.get('test_accuracy', float('nan')):.4f})")
    report.table(("model", "sampler", "NFE", "FD", "sampling s"),
                 [(names[m], label, c["nfe"], f"{c['fd']:.2f}", f"{c['sample_s']:.1f}")
                  for (m, label), c in sorted(cells.items(), key=lambda kv: kv[1]["nfe"])
                  if m in ("cd", "ct") or (m == "edm" and c["nfe"] == teacher)]
                 + [("real training images (floor)", "-", "-", f"{floor:.2f}", "-")],
                 "consistency models at 1 and 2 steps beside their EDM teacher at NFE "
                 f"{teacher}, FD as above; each trained {wall:.0f} s like the others (CD "
                 "calls the teacher twice per Heun step of every batch, so it takes fewer "
                 "steps)")
    report.table(("model", "params", "ms/step (trainer)", "steps x batch", "training s",
                  f"FD, Heun x {fm_steps}"),
                 [(name, f"{info[m]['params']:,}", f"{info[m]['ms_per_step']:.0f}",
                   f"{info[m]['steps']} x {info[m]['batch']}", f"{info[m]['train_s']:.0f}",
                   f"{cells[(m, next(lb for mm, lb in cells if mm == m))]['fd']:.2f}")
                  for m, name in (("unet", "U-Net (flow matching)"),
                                  ("dit", f"DiT, patch {dm.patch}, {dm.depth} x {dm.hidden} "
                                          "(flow matching)"))],
                 f"the backbones at equal training wall time ({wall:.0f} s each, steps from "
                 "each config's own measured ms/step)")
    report.table(("run", "steps x batch", "ms/step", "training s"),
                 [(f"{m.upper()}: {CONFIGS[m]}", f"{i['steps']} x {i['batch']}",
                   f"{i['ms_per_step']:.0f}", f"{i['train_s']:.0f}") for m, i in info.items()],
                 f"every run: {wall:.0f} s of training at its measured speed")
    keys = sorted(pics, key=lambda k: (k[0], cells[k]["nfe"]))
    viz.save_image_rows([pics[k] for k in keys], report.path("samples.png"),
                        row_labels=[f"{m}: {label}" for m, label in keys])
    report.figure("samples.png", "the same noise seed through every model and sampler")
    edm = {c["nfe"]: c["fd"] for (m, _), c in cells.items() if m == "edm"}
    ddim = {c["nfe"]: c["fd"] for (m, label), c in cells.items() if label.startswith("DDIM")}
    low = [k for k in sorted(edm) if k < max(edm) and k in ddim] or sorted(edm)
    wins = sum(edm[k] <= ddim[k] for k in low)
    report.compare(f"EDM Heun's FD ≤ DDIM's at NFE {', '.join(map(str, low))}",
                   f"{wins} of {len(low)}", "all (fewer NFE for the same quality)",
                   "Karras et al. 2022, Fig. 2", None if budget.fast else wins == len(low))
    cd1, cd2 = cells[("cd", "1 step")]["fd"], cells[("cd", "2 steps")]["fd"]
    ct1 = cells[("ct", "1 step")]["fd"]
    report.compare("CD 1 step → 2 steps (FD)", f"{cd1:.1f} → {cd2:.1f}",
                   "2 steps better (FID 3.55 → 2.93)", "Song et al. 2023, Table 1",
                   None if budget.fast else cd2 <= cd1)
    report.compare("CD vs CT at 1 step (FD)", f"{cd1:.1f} vs {ct1:.1f}",
                   "CD better (FID 3.55 vs 8.70)", "Song et al. 2023, Table 1",
                   None if budget.fast else cd1 <= ct1)
    fd = {m: next(c["fd"] for (mm, _), c in cells.items() if mm == m) for m in ("unet", "dit")}
    report.compare("FD of the DiT / of the U-Net, equal wall time",
                   f"{fd['dit'] / fd['unet']:.2f}", "a drop-in backbone (no number at this "
                   "scale)", "Peebles & Xie 2023", None)
    report.verdict_from_rows(
        "the EDM and the DDPM are different trainings of the same U-Net at equal wall time, "
        "so the row compares training and sampler together, as the papers' tables do",
        f"{wall:.0f} s of training per model (steps in the tables), one seed")
    report.path("baselines_images.json").write_text(json.dumps(
        {"runs": info, "floor": floor, "n": n,
         "cells": {f"{m}: {label}": c for (m, label), c in cells.items()}},
        indent=1, default=float))
