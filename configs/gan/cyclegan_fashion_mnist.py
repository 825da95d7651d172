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
F: Y -> X are small U-Nets (GroupNorm, tanh), D_X and D_Y PatchGANs; least-squares GAN losses (Zhu et al. §4) plus
λ_cyc (|F(G(x)) − x| + |G(F(y)) − y|), λ_cyc = objective.cycle_weight = 10,
optionally an identity loss (objective.identity_weight, 0 = off). Adam(2e-4,
β1 = 0.5), constant rate, for both players. There are no sample grids: the
run ends with samples/translations.png (rows x, G(x), F(G(x)) and y, F(y),
G(F(y)), held-out images). `jaxgen eval` reports cycle_x_l1 and cycle_y_l1
over the held-out images of each class.
"""

from jaxgen.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"
    c.data.classes = (7, 9)  # only the two domains' images reach the batches

    c.model.name = "cyclegan"
    c.model.g_channels = 32
    c.model.d_channels = 32
    c.model.groups = 8

    c.objective.name = "cyclegan"
    c.objective.class_x = 7  # sneaker
    c.objective.class_y = 9  # ankle boot
    c.objective.cycle_weight = 10.0  # lambda_cyc (Zhu et al.)
    c.objective.identity_weight = 0.0  # > 0: + weight (|G(y) - y| + |F(x) - x|)

    c.optim.name = "adam"
    c.optim.learning_rate = 2e-4
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 0
    c.optim.grad_clip = 0.0

    c.train.steps = 3000
    c.train.batch_size = 64
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.train.sample_every = 0  # no sample grids: CycleGAN cannot sample without an input
    c.train.ema_decay = 0.0

    c.eval.num_examples = 2000
    c.eval.batch_size = 500
    return c
