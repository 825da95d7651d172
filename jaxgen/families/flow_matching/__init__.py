"""Conditional flow matching (Lipman et al., 2023): regress the velocity of a path from
noise to data; sample and score by integrating the learned ODE."""

from jaxgen.families.flow_matching.config import (
    FlowMatchingEval,
    FlowMatchingSample,
    FlowMatchingSettings,
)
from jaxgen.kernel.registry import ObjectiveSpec, register_objective

register_objective(ObjectiveSpec(
    "flow_matching", "jaxgen.families.flow_matching.objective:make",
    settings=FlowMatchingSettings, sample=FlowMatchingSample, eval=FlowMatchingEval,
    summary="conditional flow matching (exact likelihood by the ODE)"))
