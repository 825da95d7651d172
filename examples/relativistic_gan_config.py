"""The ring-8 GAN config with the relativistic loss of relativistic_gan.py.

    jaxgen train --config examples/relativistic_gan_config.py --workdir runs/rsgan
"""

from pathlib import Path

from jaxgen.configs.gan.ns_toy2d import get_config as ns_toy2d


def get_config():
    c = ns_toy2d()
    del c.objective["loss"]  # the game is the file's
    c.objective.name = f"{Path(__file__).with_name('relativistic_gan.py')}:make"
    return c
