"""The runner: config -> experiment -> jitted step -> training loop, checkpoints and run
folders, on top of the kernel. It imports no family: the families register themselves
(`jaxgen.kernel.registry`), and the runner builds what a config names.

experiment  config -> model, objective, mesh, optimizers, jitted step / sample / likelihood
step        the one multi-player training step; state: the TrainState pytree
loop        `train_and_evaluate`: data, step, logs, checkpoints, pictures, resume
checkpoint  Orbax checkpoints with a manifest; workdir: the run folder's rules
resume      what a resumed run may change
runs        restoring a finished run; bench: timing a step; pictures: end-of-run pictures
"""
