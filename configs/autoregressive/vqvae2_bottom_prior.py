r"""VQ-VAE-2's bottom prior, conditioned on the top: p(bottom | top) (Razavi et al., 2019).

    # after vqvae2_top_prior.py's steps (the VQ-VAE-2, its codes, the top prior):
    jaxgen train --config configs/autoregressive/vqvae2_bottom_prior.py \
        --workdir runs/vqvae2_bottom_prior
    jaxgen eval   --workdir runs/vqvae2_bottom_prior   # exact −log p(bottom | top), test set
    jaxgen sample --workdir runs/vqvae2_bottom_prior --num 64 --out vqvae2.png

The causal transformer reads one sequence per image, [top (49) ; bottom (196)] in
raster order (data.levels = (top, bottom)); objective.condition_prefix = 49 makes the
top a given prefix: the loss, the likelihood and `jaxgen compress` count the 196
bottom positions only, log p(bottom | top) = Σ_{i ≥ 49} log p(x_i | x_<i), exactly.
Sampling: top ~ the top prior (sample.prefix_workdir), fed through the KV cache,
then bottom ~ this model given it; the VQ-VAE-2 the .npz names decodes both levels.
"""

from jaxgen.configs.autoregressive.vqvae_prior import get_config as vqvae_prior


def get_config():
    c = vqvae_prior()
    c.data.path = "runs/vqvae2_codes_train.npz"
    c.data.eval_path = "runs/vqvae2_codes_test.npz"
    c.data.levels = ("top", "bottom")
    c.objective.condition_prefix = 49  # the 7 x 7 top map
    c.sample.prefix_workdir = "runs/vqvae2_top_prior"
    c.train.steps = 1000
    c.eval.batch_size = 250  # 245 positions each
    return c
