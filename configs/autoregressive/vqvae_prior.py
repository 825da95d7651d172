r"""An autoregressive prior over a VQ-VAE's code maps (van den Oord et al., 2017):
the VQ-VAE's p(z) stand-in, so that sampling z ~ prior, x = decoder(z) generates.

    # 1. the VQ-VAE and its code maps (both splits)
    jaxgen train --config configs/vae/vqvae_fashion_mnist.py --workdir runs/vqvae
    jaxgen codes --workdir runs/vqvae --out runs/vqvae_codes_train.npz --split train
    jaxgen codes --workdir runs/vqvae --out runs/vqvae_codes_test.npz --split test
    # 2. the prior (this file), over the 7 x 7 maps of K = 128 codes
    jaxgen train --config configs/autoregressive/vqvae_prior.py --workdir runs/vqvae_prior
    jaxgen eval  --workdir runs/vqvae_prior      # exact bits per code of the test maps
    jaxgen sample --workdir runs/vqvae_prior --num 64 --out prior.png   # decoded by the VQ-VAE

The .npz files name the VQ-VAE run, which decodes the sampled maps (grids at
the end of training and by `jaxgen sample`); set data.decoder_workdir if it
moved. The prior's test NLL replaces the uniform 49·log K of the VQ-VAE's
bound: log p(x) ≥ E_q[log p(x|z)] + log p_prior(z) for the one-hot posterior.
The model: the causal transformer of transformer_fashion_mnist.py (everything
not set here comes from it), wider, over the 49 codes in raster order (KV-cache
sampling); model.name=pixelcnn also reads (h, w) maps.
"""

from jaxgen.configs.autoregressive.transformer_fashion_mnist import (
    get_config as transformer_fashion_mnist,
)


def get_config():
    c = transformer_fashion_mnist()
    c.data.name = "codes"
    c.data.path = "runs/vqvae_codes_train.npz"
    c.data.eval_path = "runs/vqvae_codes_test.npz"
    c.data.decoder_workdir = ""  # "": the VQ-VAE run the .npz names

    c.model.d_model = 128
    c.model.num_heads = 4
    c.model.num_layers = 3
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 100

    c.train.steps = 3000
    c.train.batch_size = 128
    c.train.sample_every = 1000
    c.eval.num_examples = 10000  # all test maps: 49 codes each, cheap
    c.eval.batch_size = 1000
    c.eval.full = "eval.num_examples=10000"
    return c
