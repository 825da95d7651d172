"""DCGAN (Radford et al., 2016) on Fashion-MNIST: transposed-convolution generator,
strided-convolution discriminator, the non-saturating loss, Adam(2e-4, β1 = 0.5).

    jaxgen train  --config configs/gan/dcgan_fashion_mnist.py --workdir runs/dcgan_fmnist
    jaxgen sample --workdir runs/dcgan_fmnist --num 64 --out dcgan.png
    jaxgen eval   --workdir runs/dcgan_fmnist      # FD, precision/recall, C2ST of 1000 samples
    jaxgen eval   --workdir runs/dcgan_fmnist --full   # of 10000 samples
    jaxgen invert --workdir runs/dcgan_fmnist      # GAN inversion (find z* for an image)

See jaxgen/nn/gan.py for the architecture and its one deviation (GroupNorm in G
instead of BatchNorm, no normalisation in D). The end of the run writes
samples/truncation.png (the truncation trick at ψ = 0.5, 1, 2 and none).
cgan_fashion_mnist.py (class-conditional) and can_fashion_mnist.py (CAN) change
only what they name.
"""

from jaxgen.configs.gan.ns_toy2d import get_config as ns_toy2d


def get_config():
    c = ns_toy2d()
    c.data.name = "fashion_mnist"

    c.model.name = "dcgan"
    c.model.latent_dim = 64
    c.model.g_channels = 64
    c.model.d_channels = 64
    c.model.class_head = False  # True: the CAN's two-head discriminator
    c.model.num_styles = 10
    del c.model["g_features"], c.model["d_features"]

    c.objective.loss = "ns"
    c.optim.learning_rate = 2e-4
    c.optim.b1 = 0.5

    c.train.steps = 5000
    c.train.batch_size = 64
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.train.sample_every = 1000
    c.train.ema_decay = 0.999  # samples from an EMA of G (Karras et al., 2018; Yazıcı et al.)

    c.sample.num = 64
    c.eval.num_examples = 1000
    c.eval.batch_size = 500
    c.eval.mmd_num = 0
    c.eval.mode_samples = 0
    # sample quality in the feature space of jaxgen's classifier (`jaxgen classifier` once;
    # without it eval says so): FD depends on n, so compare FDs at equal fd_num
    c.eval.fd_num = 1000
    c.eval.use_ema = True
    c.eval.full = "eval.fd_num=10000"
    return c
