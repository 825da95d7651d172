"""pix2pix (Isola et al., 2017) on Fashion-MNIST: edges -> clothes, conditional GAN + L1.

    jaxgen train    --config configs/gan/pix2pix_fashion_mnist.py --workdir runs/pix2pix_edges
    jaxgen eval     --workdir runs/pix2pix_edges     # held-out L1 and the baseline's
    jaxgen pictures --workdir runs/pix2pix_edges     # translations.png again, from the checkpoint

The paired data are built from each image itself (objective.task): "edges"
(the input is the image's thresholded Sobel edge map) or, with
--config.objective.task=inpaint, "inpaint" (the input is the image with a
14x14 hole at a random place, filled with 0). G is a small U-Net (28 -> 14 ->
7 and back, skip connections, GroupNorm, tanh), D a conditional PatchGAN on
the input and the output stacked on channels (7x7 patch logits, each seeing
18x18 pixels). G minimises the non-saturating adversarial term +
λ·mean|y − G(x)| with λ = objective.l1_weight = 100, D the usual
cross-entropy; Adam(2e-4, β1 = 0.5) for both, constant rate, as in the paper.
There are no sample grids (translation needs an input): the run ends with
samples/translations.png (rows: input, G(input), target, held-out images).
`jaxgen eval` reports the held-out l1 (mean |y − G(x_in)| per pixel, model
space [−1, 1]) beside baseline_l1, the L1 of the mean training image (edges)
or of the input itself (inpaint).
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"

    c.model.name = "pix2pix_unet"
    c.model.g_channels = 32  # U-Net widths 32, 64, 128
    c.model.d_channels = 32  # PatchGAN widths 32, 64
    c.model.groups = 8

    c.objective.name = "pix2pix"
    c.objective.task = "edges"  # edges | inpaint
    c.objective.l1_weight = 100.0  # lambda (Isola et al.)
    c.objective.edge_threshold = 2.0  # edges: Sobel magnitude (model space) counted as an edge
    c.objective.hole_size = 14  # inpaint: side of the square hole

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
    c.train.sample_every = 0  # no sample grids: pix2pix cannot sample without an input
    c.train.ema_decay = 0.0  # pictures and eval use the generator itself

    c.eval.num_examples = 5000
    c.eval.batch_size = 500
    c.eval.full = "eval.num_examples=10000"  # the whole test set
    return c
