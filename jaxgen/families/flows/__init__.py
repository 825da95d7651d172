"""Normalizing flows trained by exact maximum likelihood (change of variables):
RealNVP and Glow (networks in jaxgen.nn.flows, layers in jaxgen.bijectors)."""

from jaxgen.core.registry import ObjectiveSpec, register_objective
from jaxgen.families.flows.config import FlowSample

register_objective(ObjectiveSpec(
    "flow_nll", "jaxgen.families.flows.objective:make", sample=FlowSample,
    summary="a normalizing flow (exact likelihood)"))
