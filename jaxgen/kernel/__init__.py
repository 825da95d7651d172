"""The kernel: what every other part of jaxgen builds on, importing nothing else of it.

errors      one exception per kind of user mistake (`UserError`, `ConfigError`, ...)
settings    declared settings: `setting(default, doc)` fields of frozen dataclasses
config      config files, `--config.KEY=VALUE` overrides, resolution against the declarations
contract    the objective contract (`Objective`, `Player`, `Likelihood`, `DatasetInfo`)
registry    name -> builder tables for objectives, models, datasets and commands
transforms  data space <-> model space (dequantisation, scaling), shared by step and metrics
"""
