"""jaxgen's shipped configs (the package jaxgen.configs): configs/<family>/<name>.py.

Paper configs, configs/<family>/<model>_<data.name>.py (diffusion/ddpm_cifar10,
flow_matching/fm_imagenet64, ...), reproduce a published number: a docstring naming the
paper, its table and its hyperparameters, and a module-level PAPER record whose keys
`jaxgen.runner.papers` documents (RECORD_KEYS) and lists (paper_configs()).
"""
