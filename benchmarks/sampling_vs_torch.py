"""Diffusion sampling, jaxgen vs PyTorch + diffusers: the DDPM U-Net, the same network calls.

    python benchmarks/sampling_vs_torch.py [--num 16] [--ddim-steps 50] [--json out.json]

One process, the U-Net of configs/diffusion/ddpm_fashion_mnist.py and its PyTorch twin
(`torch_models.UNet`) holding the *same* weights (the initial parameters, each perturbed
by 0.05 N(0, 1) so that ε_θ is not the zero-initialised output layer's 0; copied as
`check_equivalence.py` does):

* DDIM, η = 0, `--ddim-steps` steps: jaxgen's `Experiment.sample(sampler="ddim")` (one
  compiled `lax.scan`, compiled ahead of the timed calls) beside a PyTorch loop over the
  twin driven by diffusers' `DDIMScheduler` configured as jaxgen's sampler (linear β,
  "trailing" steps T, T − T/S, …: jaxgen's τ_i − 1 in diffusers' 0-based index; x̂_0
  clipped to [−1, 1] with ε recomputed from it; ᾱ = 1 after the last step). Both start
  from the same x_T, so the images must agree: the table gives the fraction of pixels
  within one 8-bit level.
* Ancestral (Algorithm 2, T = 1000 network calls): jaxgen's `sampler="ddpm"` beside the
  twin driven by diffusers' `DDPMScheduler` (variance "fixed_large" = the config's σ_t² =
  β_t, x̂_0 clipped). The noise differs (each library draws its own), so only time is
  compared.

PyTorch runs under `torch.inference_mode()` with `--threads` intra-op threads, after one
untimed DDIM call; jaxgen's samplers are compiled ahead. Time: the median of `--reps`
calls (ancestral: one call). Ratio jaxgen/PyTorch < 1: jaxgen faster.
Needs PyTorch and diffusers (pip install torch diffusers); jaxgen never imports them.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = "diffusion/ddpm_fashion_mnist"


def _median_time(fn, reps: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num", type=int, default=16, help="images per call")
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--reps", type=int, default=3, help="timed DDIM calls (median)")
    p.add_argument("--no-ancestral", action="store_true", help="skip the 1000-step sampler")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    try:
        import torch
        from diffusers import DDIMScheduler, DDPMScheduler
    except ImportError:
        print("benchmarks/sampling_vs_torch.py needs PyTorch and diffusers: "
              "pip install torch diffusers (jaxgen itself does not need them).",
              file=sys.stderr)
        return 2
    import jax

    sys.path.insert(0, str(HERE))
    import torch_models as tm
    from check_equivalence import load, unet_state

    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import transforms
    from jaxgen.runner.bench import setup
    from jaxgen.runner.logging import format_table

    torch.set_num_threads(args.threads)
    cfg = config_lib.load_config(CONFIG)
    exp, state, _ = setup(cfg)
    key = jax.random.key(0)
    leaves, tree = jax.tree.flatten(state.ema_params)
    params = jax.tree.unflatten(tree, [v + 0.05 * jax.random.normal(jax.random.fold_in(key, i),
                                                                    v.shape)
                                       for i, v in enumerate(leaves)])
    c, o = cfg.model, cfg.objective
    twin = tm.UNet(1, tuple(c.channels), c.num_res_blocks, c.time_dim, c.groups).eval()
    load(twin, unet_state(params["model"], len(c.channels), c.num_res_blocks))
    T, n = int(o.num_steps), args.num
    sched = dict(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4,
                 beta_end=0.02, clip_sample=True, clip_sample_range=1.0,
                 prediction_type="epsilon")

    # jaxgen's x_T for this key (Experiment.sample: chunk 0 -> fold_in(rng, 0); draw: split)
    kz = jax.random.split(jax.random.fold_in(key, 0))[0]
    x_T = np.asarray(jax.random.normal(kz, (n, *exp.info.event_shape)))
    x_T_torch = torch.from_numpy(np.array(x_T.transpose(0, 3, 1, 2)))

    def torch_loop(scheduler, steps, **step_kw):
        def run():
            scheduler.set_timesteps(steps)
            x = x_T_torch.clone()
            with torch.inference_mode():
                for t in scheduler.timesteps:
                    u = torch.full((n,), (int(t) + 1) / T)  # diffusers' t is jaxgen's t - 1
                    x = scheduler.step(twin(x, u), t, x, **step_kw).prev_sample
            return transforms.postprocess("images", x.permute(0, 2, 3, 1).numpy())
        return run

    rows, out = [], {"num": n, "torch_threads": torch.get_num_threads(),
                     "jax": jax.__version__, "torch": torch.__version__}
    runs = [("DDIM", args.ddim_steps, dict(sampler="ddim", steps=args.ddim_steps, eta=0.0),
             torch_loop(DDIMScheduler(**sched, set_alpha_to_one=True,
                                      timestep_spacing="trailing"), args.ddim_steps,
                        eta=0.0, use_clipped_model_output=True), args.reps)]
    if not args.no_ancestral:
        runs.append(("ancestral (DDPM)", T, dict(sampler="ddpm"),
                     torch_loop(DDPMScheduler(**sched, variance_type="fixed_large"), T), 1))
    runs[0][3]()  # PyTorch's first call (allocator, kernels) is not timed; jaxgen compiles
    for name, nfe, options, torch_run, reps in runs:
        compile_s = exp.compile_sample(params, n, chunk=n, **options)
        jx_s, jx_img = _median_time(
            functools.partial(exp.sample, params, key, n, chunk=n, **options), reps)
        pt_s, pt_img = _median_time(torch_run, reps)
        same = (float(np.mean(np.abs(jx_img.astype(int) - pt_img.astype(int)) <= 1))
                if name == "DDIM" else None)
        out[name] = {"nfe": nfe, "jaxgen_s": jx_s, "jaxgen_compile_s": compile_s,
                     "torch_s": pt_s, "ratio": jx_s / pt_s, "pixels_within_1_level": same}
        rows.append((name, nfe, f"{n / jx_s:.2f}", f"{n / pt_s:.2f}", f"{jx_s / pt_s:.2f}",
                     f"{compile_s:.1f}", "-" if same is None else f"{same:.4f}"))
        print(f"{name}: jaxgen {jx_s:.2f} s, PyTorch {pt_s:.2f} s", flush=True)
    print(format_table(rows, header=(
        "sampler", "network calls", "jaxgen images/s", "PyTorch images/s", "jaxgen/PyTorch",
        "jaxgen compile s", "same images (±1 level)"), title=(
        f"\n{CONFIG} U-Net, {n} images per call; jax {jax.__version__} "
        f"({jax.default_backend()}), torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads) + diffusers schedulers")))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
