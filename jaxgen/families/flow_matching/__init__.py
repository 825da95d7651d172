"""Conditional flow matching (Lipman et al., 2023): regress the velocity of a path from
noise to data; sample and score by integrating the learned ODE."""

from jaxgen.families.flow_matching.config import (
    FlowMatchingEval,
    FlowMatchingSample,
    FlowMatchingSettings,
)
from jaxgen.kernel.registry import Metric, ObjectiveSpec, register_metric, register_objective

register_objective(ObjectiveSpec(
    "flow_matching", "jaxgen.families.flow_matching.objective:make",
    settings=FlowMatchingSettings, sample=FlowMatchingSample, eval=FlowMatchingEval,
    summary="conditional flow matching (exact likelihood by the ODE)"))


def _straight_applies(ctx) -> bool:
    from jaxgen.families.flow_matching.objective import FlowMatchingTools
    return isinstance(ctx.exp.objective.tools, FlowMatchingTools)


def _straightness(ctx) -> dict:
    from jaxgen.families.flow_matching.objective import straightness_metric
    return straightness_metric(ctx)


# Liu et al. (2022)'s straightness of the learned flow, reported by `jaxgen eval`
register_metric(Metric("straightness", _straight_applies, _straightness, order=35))
