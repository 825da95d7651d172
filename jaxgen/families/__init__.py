"""The families, one folder each: objectives (losses at module level), declared settings,
pictures, tools and CLI commands. Importing this package imports every family folder in
it, and each registers itself with `jaxgen.kernel.registry` (which imports this package
on its first lookup): a new family is a new folder, with no list to edit."""

from jaxgen.kernel.registry import import_submodules

import_submodules(__name__)
