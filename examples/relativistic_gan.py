"""A new GAN loss in one file: the relativistic standard GAN (Jolicoeur-Martineau, 2019).

D judges whether a real example is more realistic than a fake one, paired in the batch:

    D: −E log σ(C(x) − C(G(z))),        G: −E log σ(C(G(z)) − C(x)),

with C the discriminator's raw output. It is one `GANLoss` for the family's `make`
(players, n_critic, sampling and pictures unchanged). Config: relativistic_gan_config.py.
"""

import jax
import jax.numpy as jnp

import jaxgen
from jaxgen.families.gan import gan
from jaxgen.families.gan.config import GameSettings, GANSample


def d_loss(real, fake):
    """−E log σ(C(x) − C(G(z)))."""
    return jnp.mean(jax.nn.softplus(-(real - fake)))


def g_loss(real, fake):
    """−E log σ(C(G(z)) − C(x)); the real scores are the generator's constant."""
    return jnp.mean(jax.nn.softplus(-(fake - jax.lax.stop_gradient(real))))


RSGAN = gan.GANLoss(d_loss, g_loss, output="score", g_needs_real=True, name="rsgan")


@jaxgen.objective(settings=GameSettings, sample=GANSample)
def make(ctx):
    """The relativistic standard GAN."""
    return gan.make(ctx, loss=RSGAN)
