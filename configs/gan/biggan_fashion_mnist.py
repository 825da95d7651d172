"""A small class-conditional BigGAN (Brock et al., 2018) on Fashion-MNIST.

    jaxgen train  --config configs/gan/biggan_fashion_mnist.py --workdir runs/biggan_fmnist
    jaxgen sample --workdir runs/biggan_fmnist --num 100 --classes --out biggan.png
    jaxgen eval   --workdir runs/biggan_fmnist      # FD, precision/recall of 1000 samples
    jaxgen reproduce truncation                     # ortho reg on vs off, over psi

BigGAN's pieces (jaxgen/nn/biggan.py): G with a shared class embedding feeding conditional
batch norms in residual up-blocks, one self-attention block, tanh out; D with
spectral-normalised residual down-blocks, self-attention, sum pooling and a projection
head; the hinge loss; orthogonal regularisation of G (β = 1e-4, the paper's); Adam with
BigGAN's β = (0, 0.999) and SAGAN's learning rates G 1e-4 / D 4e-4. Widths are cut to CPU size
(c = 12; BigGAN's 128x128 model has c = 96), and the EMA of G (BigGAN's 0.9999) is 0.999 for a run
of a few thousand steps. G's batch norms use the current batch's statistics at sample
time too: sample in batches of many.
"""

from jaxgen.configs.gan.cgan_fashion_mnist import get_config as cgan_fashion_mnist


def get_config():
    c = cgan_fashion_mnist()  # class-conditional DCGAN settings: data, eval, sampling
    c.model.name = "biggan"
    del c.model["g_channels"], c.model["d_channels"]
    c.model.latent_dim = 64
    c.model.g_channels = 12
    c.model.d_channels = 12
    c.model.embed_dim = 32

    c.objective.loss = "hinge"
    c.objective.ortho_weight = 1e-4  # BigGAN Sec. 3.1: beta = 1e-4

    c.optim.b1 = 0.0
    c.optim.b2 = 0.999
    c.optim.learning_rate = 2e-4
    # BigGAN's own rates, G 5e-5 / D 2e-4, learned no class conditioning in 1000 steps here
    # (label agreement 0.12, chance 0.1); SAGAN's two-timescale rates instead:
    c.optim.players = {"generator": {"learning_rate": 1e-4},
                       "discriminator": {"learning_rate": 4e-4}}

    c.train.steps = 3000
    c.train.checkpoint_every = 1000
    c.train.sample_every = 1000
    c.train.ema_decay = 0.999
    return c
