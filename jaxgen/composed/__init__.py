"""Composed runs: models whose data are another run's latents or codes.

A prior on a VAE's latents, on a VQ-VAE's pre-quantised maps or code maps, and VQ-VAE-2's
bottom prior given the top prior's draws all depend on another trained run. This package
is their one home:

references  a run reference (a workdir) -> its restored experiment and params, cached,
            resolved before any tracing
latents     the dataset data.name=latents: an autoencoder run's latents of its own images
codes       the dataset data.name=codes: a VQ-VAE's code maps exported by `jaxgen codes`
decoding    the `Decoder` that turns a prior's samples into the autoencoder's pictures
bound       the composed bound on log p(x) of a VAE with a learned prior (`jaxgen eval`)

Importing the package registers its datasets and its metric.
"""

from jaxgen.kernel.registry import import_submodules

import_submodules(__name__)
