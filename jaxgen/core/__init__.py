"""The generic core: the objective contract, the one trainer (step, loop, state,
checkpoints, the device mesh, optimizers), the experiment wiring, configs and their
declared settings, the registry, and the generic pictures. It imports no family: the
families register themselves (`jaxgen.core.registry`)."""
