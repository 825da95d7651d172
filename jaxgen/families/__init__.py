"""The families, one folder each: objectives (losses at module level), declared settings,
pictures, tools and CLI commands. Importing this package registers them all with
`jaxgen.core.registry` (which does so on its first lookup)."""

from jaxgen.families import autoregressive, diffusion, flow_matching, flows, gan, vae  # noqa: F401
