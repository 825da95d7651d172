"""VAE (Kingma & Welling, 2014) on Fashion-MNIST: conv encoder/decoder, 32-d latent,
discretised logistic decoder over the 256 pixel values.

    jaxgen train  --config configs/vae/vae_fashion_mnist.py --workdir runs/vae_fmnist
    jaxgen eval   --workdir runs/vae_fmnist      # IWAE (k = 100) and ELBO bits/dim, quick
    jaxgen eval   --workdir runs/vae_fmnist --full   # IWAE (k = 1000), all 10000 test images
    jaxgen sample --workdir runs/vae_fmnist --num 64 --out vae.png

The decoder is discrete (each pixel's 256 bins; the edge bins take the tails),
so both bounds are on log P(x) of the 8-bit image itself and are comparable
with every family's bits/dim; images are fed as bin centres. `jaxgen eval`
reports the IWAE bound (Burda et al., 2016) with eval.iwae_k samples per
image, drawn eval.iwae_chunk at a time (memory does not grow with k): k decoder
passes per image, so the time grows as num_examples x iwae_k (the README's eval
section has measured times). The default is quick (500 images, k = 100); --full
(eval.full) takes k = 1000 on all 10000 test images.
The ELBO (eval "elbo", with its recon and kl terms) is the k = 1 bound.
Samples are the decoder's mean image at z ~ N(0, I) (sample.mode=draw: x ~ p(x|z)).
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"

    c.model.name = "vae_conv"
    c.model.latent_dim = 32
    c.model.channels = (32, 64)
    c.model.hidden = 256

    c.objective.name = "vae"
    c.objective.encoder = "gaussian"  # gaussian (the VAE) | deterministic (a plain autoencoder)
    c.objective.decoder = "logistic"  # bernoulli | gaussian | gaussian_learned | logistic
    c.objective.beta = 1.0
    c.objective.kl_warmup_steps = 0  # linear KL warm-up from 0 to beta over N steps
    c.objective.binarize = "threshold"  # bernoulli: x > 127, or stochastic
    c.objective.decoder_std = 0.1  # gaussian (fixed)
    c.objective.learned_std = "pixel"  # gaussian_learned: pixel | example

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 5000
    c.train.batch_size = 128
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.train.sample_every = 1000
    c.train.ema_decay = 0.999

    c.sample.num = 64
    c.sample.temperature = 1.0
    c.sample.mode = "mean"  # mean | draw

    # quick (about a minute on 2 CPU cores); --full: k = 1000 on the whole test set
    c.eval.num_examples = 500
    c.eval.batch_size = 100
    c.eval.likelihood = ""  # iwae (default), elbo
    c.eval.iwae_k = 100
    c.eval.iwae_chunk = 25  # samples per scan step: batch_size x 25 decoder passes at once
    c.eval.elbo_samples = 1
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000 eval.iwae_k=1000"
    return c
