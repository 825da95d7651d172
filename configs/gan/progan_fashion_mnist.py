"""Progressive GAN (Karras et al., 2018) on Fashion-MNIST: G and D grow 7x7 -> 14x14 ->
28x28 with fade-ins, equalised learning rate, pixel norm in G and minibatch stddev in D
(jaxgen/nn/progan.py has the schedule and the pieces).

    jaxgen train  --config configs/gan/progan_fashion_mnist.py --workdir runs/progan_fmnist
    jaxgen sample --workdir runs/progan_fmnist --num 64 --out progan.png
    jaxgen eval   --workdir runs/progan_fmnist      # FD, precision/recall, C2ST of 1000 samples

The growth, with model.phase_steps = P = 750 of the 5000 steps: 7x7 for P steps, then
fade in 14x14 over P and train it P, then fade in 28x28 over P; full resolution from step
4P = 3000 on. The training log shows `discriminator/resolution` and `discriminator/alpha`.
The paper's Adam (lr 1e-3, beta1 = 0, beta2 = 0.99); the game is DCGAN's non-saturating
loss (the paper used WGAN-GP), so that dcgan_fashion_mnist.py is the comparison with
only the networks and the growth changed. G's EMA (decay 0.999) draws the samples.
"""

from jaxgen.configs.gan.dcgan_fashion_mnist import get_config as dcgan_fashion_mnist


def get_config():
    c = dcgan_fashion_mnist()
    c.model.name = "progan"
    c.model.latent_dim = 64
    del c.model["g_channels"], c.model["d_channels"]  # DCGAN's are one width, these per stage
    c.model.g_channels = (64, 32, 16)  # 7x7, 14x14, 28x28
    c.model.d_channels = (64, 32, 16)
    c.model.phase_steps = 750
    c.model.mbstd_group = 4

    c.optim.learning_rate = 1e-3
    c.optim.b1 = 0.0
    c.optim.b2 = 0.99
    return c
