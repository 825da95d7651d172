"""Normalizing flows trained by exact maximum likelihood (change of variables):
RealNVP and Glow (networks in jaxgen.nn.flows, layers in jaxgen.bijectors)."""

from jaxgen.families.flows.config import FlowSample
from jaxgen.kernel.registry import ObjectiveSpec, register_objective

register_objective(ObjectiveSpec(
    "flow_nll", "jaxgen.families.flows.objective:make", sample=FlowSample,
    summary="a normalizing flow (exact likelihood)"))
