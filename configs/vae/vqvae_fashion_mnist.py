"""VQ-VAE (van den Oord et al., 2017) on Fashion-MNIST: 7x7 code maps over K = 128 codes.

    jaxgen train  --config configs/vae/vqvae_fashion_mnist.py --workdir runs/vqvae_fmnist
    jaxgen eval   --workdir runs/vqvae_fmnist    # uniform-prior bound (crude; see below)

Loss: the lecture's ‖x − D(e_k)‖² + ‖sg[E(x)] − e_k‖² + β‖E(x) − sg[e_k]‖², β = 0.25,
with the codebook kept by EMA (objective.ema; the codebook term is then dropped)
and codes idle for objective.restart_after steps restarted at encoder outputs.
The training log has mse (model space [−1, 1]), commitment, perplexity and
usage of the codes. Reconstructions are the pictures that matter:
there is no prior over the codes yet, so samples decode *uniformly random*
code maps. `jaxgen eval` reports log N(x; D(e_k), s²) − 49·log K, a valid but
loose bound (uniform prior, s = objective.decoder_std), cheap: one pass per image.
Code maps for a later autoregressive prior: `info["encode_codes"](params, x)`.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"

    c.model.name = "vqvae_conv"
    c.model.embed_dim = 16
    c.model.channels = (32, 64)
    c.model.num_res = 1

    c.objective.name = "vqvae"
    c.objective.num_codes = 128
    c.objective.beta = 0.25  # commitment
    c.objective.ema = True
    c.objective.ema_decay = 0.99
    c.objective.ema_epsilon = 1e-5
    c.objective.restart_after = 100  # steps a code may go unused; 0: no restarts
    c.objective.decoder_std = 0.1  # only for eval's bound

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 5000
    c.train.batch_size = 128
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.train.sample_every = 1000
    c.train.ema_decay = 0.999

    c.sample.num = 64

    c.eval.num_examples = 10000  # the whole test set: one pass per image, within a minute
    c.eval.batch_size = 100
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000"  # --full: the default already is
    return c
