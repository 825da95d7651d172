"""The lecture's finite-memory model on a stationary Gaussian AR(2) toy with a known likelihood.

    jaxgen train --config configs/autoregressive/ar_toy.py --workdir runs/ar_toy
    jaxgen eval  --workdir runs/ar_toy    # nll_nats vs true_nll_nats, nll_gap_nats

Data (`jaxgen.data.toy_sequences`): x_t = a1·x_{t−1} + a2·x_{t−2} + σ·ε_t of
length T = 32 from its stationary law, a1 = 1.0, a2 = −0.5, σ = 0.5. The true
conditional entropy is ½·log(2πe·σ²) = 0.7258 nats per step (t ≥ 3): the floor
of the per-step NLL. Model: p(x) = p(x_1) p(x_2 | x_1) Π_{t≥3} p(x_t | x_{t−1}, x_{t−2}),
the slide's k = 2 window, with Gaussian conditionals N(μ_t, s_t²) from an MLP
over the window plus a learned position embedding (positions 1 and 2 need their
own conditionals of the stationary start). The class holds the truth, so the
gap `nll_gap_nats` / T should go to ~0 (target: < 0.02 nats per step).
Other sequence models: --config.model.name=ar_transformer etc. need their own
model.* keys (see configs/autoregressive/*_fashion_mnist.py).
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "gaussian_ar2"
    c.data.length = 32  # T
    c.data.ar_coeffs = (1.0, -0.5)  # (a1, a2), stationary
    c.data.std = 0.5  # σ, the innovation std
    c.data.num_train = 100_000
    c.data.num_eval = 10_000

    c.model.name = "ar_mlp"
    c.model.context = 2  # k: p(x_t | x_{t-2}, x_{t-1})
    c.model.features = (64, 64)
    c.model.positional = True

    c.objective.name = "autoregressive"

    c.optim.learning_rate = 2e-3
    c.optim.warmup_steps = 100

    c.train.steps = 3000
    c.train.batch_size = 256
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.train.sample_every = 0
    c.train.ema_decay = 0.999

    c.sample.num = 1000  # saved as samples/*.npy (sequences)
    c.sample.temperature = 1.0  # multiplies the Gaussian scale
    c.sample.sampler = "auto"  # auto | cached | recompute

    c.eval.num_examples = 10_000
    c.eval.batch_size = 1000
    c.eval.mmd_num = 1000  # model samples vs held-out sequences (32-D)
    return c
