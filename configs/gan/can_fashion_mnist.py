"""Creative Adversarial Network (Elgammal et al., 2017) on Fashion-MNIST, the classes
playing the art "styles": the DCGAN config with a two-head discriminator (real/fake and a
10-way class head trained on the real labels) and the generator's style-ambiguity term.

    jaxgen train --config configs/gan/can_fashion_mnist.py --workdir runs/can_fmnist

G is unconditional; its loss adds style_weight × the cross-entropy between the class
head's posterior D_c(·|G(z)) and the uniform distribution, pushing samples away from any
one class while the real/fake head keeps them realistic. The end of the run writes
samples/class_posterior.png: the entropy of D_c on real images and on samples (log 10 =
2.30 at full ambiguity). Compare with a DCGAN run given a class head but no ambiguity
term (--config.objective.style_weight=0).
"""

from jaxgen.configs.gan.dcgan_fashion_mnist import get_config as dcgan_fashion_mnist


def get_config():
    c = dcgan_fashion_mnist()
    c.model.class_head = True
    c.model.num_styles = 10
    c.objective.style_weight = 1.0
    c.objective.class_weight = 1.0
    return c
