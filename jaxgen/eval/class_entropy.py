"""How class-ambiguous are a model's samples? A fixed judge's class posterior entropy.

The CAN (Elgammal et al., 2017) pushes its generator toward samples that no
class ("style") claims. Each CAN has its own class head, so comparing runs by
their own heads compares different judges; here one judge scores every run: a
softmax regression on the pixels of the labelled training images (a linear
probe: about 84 % test accuracy on Fashion-MNIST, printed), fitted once per
call. For each run it reports, over n samples, the mean entropy of the judge's
posterior (nats; log 10 = 2.30 is full ambiguity) and the share of samples
whose top class has probability < 0.5, beside the same numbers on real test
images.

    python -m jaxgen.eval.class_entropy runs/dcgan_fmnist runs/can_fmnist [--num 2000]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax


def fit_softmax_regression(x, y, num_classes: int, steps: int = 300, lr: float = 0.05,
                           l2: float = 1e-4):
    """Multinomial logistic regression on flattened x (model space), full-batch Adam."""
    x = jnp.asarray(x, jnp.float32).reshape(len(x), -1)
    y = jnp.asarray(y, jnp.int32)
    params = {"w": jnp.zeros((x.shape[1], num_classes)), "b": jnp.zeros(num_classes)}
    tx = optax.adam(lr)

    def loss(p, x, y):
        logits = x @ p["w"] + p["b"]
        ce = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], -1))
        return ce + l2 * jnp.sum(jnp.square(p["w"]))

    @jax.jit
    def fit(p, x, y):  # data as arguments, not constants folded into the program
        def body(carry, _):
            p, s = carry
            g = jax.grad(loss)(p, x, y)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None
        (p, _), _ = jax.lax.scan(body, (p, tx.init(p)), None, length=steps)
        return p

    return fit(params, x, y)


def log_posterior(params, x):
    x = jnp.asarray(x, jnp.float32).reshape(len(x), -1)
    return jax.nn.log_softmax(x @ params["w"] + params["b"])


def ambiguity(params, x) -> dict:
    """Mean entropy (nats) of the judge's posterior and the share with top probability < 0.5."""
    lp = np.asarray(log_posterior(params, x), np.float64)
    h = -np.sum(np.exp(lp) * lp, -1)
    return {"entropy_nats": float(h.mean()), "entropy_se": float(h.std() / math.sqrt(len(h))),
            "ambiguous_pct": float(100 * np.mean(np.exp(lp).max(-1) < 0.5)), "n": len(h)}


def main(argv=None) -> int:
    from jaxgen.data import get_dataset
    from jaxgen.kernel import transforms
    from jaxgen.kernel.config import from_json_file
    from jaxgen.runner.experiment import Experiment, read_run_info
    from jaxgen.runner.logging import format_table
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workdirs", nargs="+")
    p.add_argument("--num", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    first = from_json_file(Path(args.workdirs[0]) / "config.json")
    train = get_dataset(first.data, "train").source
    test = get_dataset(first.data, "test").source
    tr = train.get(np.arange(len(train)))
    te = test.get(np.arange(min(len(test), args.num)))
    c = int(tr["label"].max()) + 1
    pre = lambda raw: transforms.preprocess("images", raw, None, dequantize=False)  # noqa: E731
    judge = fit_softmax_regression(pre(tr["x"]), tr["label"], c)
    acc = float(np.mean(np.argmax(np.asarray(log_posterior(judge, pre(te["x"]))), -1)
                        == te["label"]))
    rows = [("judge", f"softmax regression on pixels, test accuracy {100 * acc:.1f} % "
                      f"({len(te['label'])} test images)")]
    out = {"judge_test_accuracy": acc, "runs": {}}
    real = ambiguity(judge, pre(te["x"]))
    out["runs"]["real test images"] = real
    rows.append(("real test images", f"entropy {real['entropy_nats']:.3f} ± "
                 f"{real['entropy_se']:.3f} nats, ambiguous {real['ambiguous_pct']:.1f} %"))
    for wd in args.workdirs:
        cfg = from_json_file(Path(wd) / "config.json")
        exp = Experiment(cfg, read_run_info(Path(wd)))
        state, _ = exp.restore(wd)
        x = exp.sample(state.ema_params, jax.random.key(args.seed), args.num, chunk=500)
        r = ambiguity(judge, pre(x))
        out["runs"][wd] = r
        rows.append((wd, f"entropy {r['entropy_nats']:.3f} ± {r['entropy_se']:.3f} nats, "
                         f"ambiguous {r['ambiguous_pct']:.1f} %"))
    print(format_table(rows, title=f"class-posterior entropy of {args.num} samples "
                                   f"(log {c} = {math.log(c):.3f} is full ambiguity)"))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
