"""The built-in datasets, one module each; importing this package registers them all
(`jaxgen.kernel.registry.register_dataset`). Every module declares its data.* settings
(a frozen dataclass of `setting(default, doc)` fields) and a `DatasetSpec`: how to build
a split, its kind, its class names and, where one exists, the feature space of its
Fréchet distance. A new dataset is a new module here, or a plugin file of your own:
`data.name=path/to/my_data.py:make` (docs/data.md).
"""

from jaxgen.kernel.registry import import_submodules

import_submodules(__name__)
