"""jaxgen: deep generative models in JAX/Flax, every objective a pure function, one trainer.

The public API is `jaxgen.api` (see its docstring), also reachable from here:
`jaxgen.train`, `jaxgen.load`, `jaxgen.load_config`, `jaxgen.Objective`, ... Importing
`jaxgen` itself stays light; the API is imported on first use.
"""

import importlib


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    api = importlib.import_module("jaxgen.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'jaxgen' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *importlib.import_module("jaxgen.api").__all__])
