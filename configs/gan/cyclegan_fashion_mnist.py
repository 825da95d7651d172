"""CycleGAN (Zhu et al., 2017) on Fashion-MNIST: sneakers <-> ankle boots, without pairs.

    jaxgen train    --config configs/gan/cyclegan_fashion_mnist.py --workdir runs/cyclegan_7_9
    jaxgen eval     --workdir runs/cyclegan_7_9      # held-out cycle L1, both ways
    jaxgen pictures --workdir runs/cyclegan_7_9      # translations.png again, from the checkpoint

Domain X = the images of class objective.class_x (7, sneaker), Y = those of
objective.class_y (9, ankle boot), both taken from the same shuffled batches
of those two classes only (data.classes = (7, 9): a batch of 64 holds ~32 of
each; rows of any other class would be masked out). Other pairs: e.g.
--config.objective.class_x=1 --config.objective.class_y=3
--config.data.classes="(1, 3)" for trouser <-> dress. G: X -> Y and
F: Y -> X are small U-Nets (GroupNorm, tanh), D_X and D_Y PatchGANs;
least-squares GAN losses (Zhu et al. §4) plus
λ_cyc (|F(G(x)) − x| + |G(F(y)) − y|), λ_cyc = objective.cycle_weight = 10,
optionally an identity loss (objective.identity_weight, 0 = off). Adam(2e-4,
β1 = 0.5), constant rate, for both players. There are no sample grids: the
run ends with samples/translations.png (rows x, G(x), F(G(x)) and y, F(y),
G(F(y)), held-out images). `jaxgen eval` reports cycle_x_l1 and cycle_y_l1
over the held-out images of each class.
"""

import ml_collections

from jaxgen.configs.gan.pix2pix_fashion_mnist import get_config as pix2pix_fashion_mnist


def get_config():
    # Optimizer, schedule and training loop as pix2pix (Adam 2e-4, β1 = 0.5, constant).
    c = pix2pix_fashion_mnist()
    c.data.classes = (7, 9)  # only the two domains' images reach the batches

    c.model.name = "cyclegan"  # same U-Net / PatchGAN widths as pix2pix

    c.objective = ml_collections.ConfigDict()
    c.objective.name = "cyclegan"
    c.objective.class_x = 7  # sneaker
    c.objective.class_y = 9  # ankle boot
    c.objective.cycle_weight = 10.0  # lambda_cyc (Zhu et al.)
    c.objective.identity_weight = 0.0  # > 0: + weight (|G(y) - y| + |F(x) - x|)

    c.eval.num_examples = 2000  # the test images of the two classes: 1000 each
    c.eval.full = "eval.num_examples=2000"  # --full: the default already is
    return c
