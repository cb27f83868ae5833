"""Stage 3: the plan, a pure function of the resolved inputs and the inventory.

For each of the six resources the plan says what will happen and why:

- ``CREATE``: it does not exist; the deployment creates it.
- ``REUSE``: it exists; the deployment refers to it as ``existing`` and never writes it.
- ``UPDATE``: it exists and the deployment applies its template: always for the
  container app (it belongs to inference), for an environment that gets the
  serverless GPU profile added, for another resource only when asked.

Problems that make the plan unusable (a dedicated GPU profile asked of a
reused environment, a region mismatch, a storage account without shared-key
access, an environment storage bound to another share...) are collected in
``Plan.problems``, all of them, rather than raised one at a time. A plan with
problems is *blocked*. Warnings (``Plan.warnings``) do not block.

Every plan also estimates, from tables shipped in ``azinfer/data/``: whether
the base model fits the GPU (:mod:`~azinfer.plan.fit`), what the endpoint
costs (:mod:`~azinfer.plan.cost`), how long a serverless replica takes to
start (:mod:`~azinfer.plan.coldstart`), and, offline, whether the region
offers the GPU profile (:mod:`~azinfer.plan.profiles`).

Modules: :mod:`~azinfer.plan.model` (the values), :mod:`~azinfer.plan.planner`
(:func:`make_plan`), :mod:`~azinfer.plan.checks` (the named checks),
:mod:`~azinfer.plan.view` (text and HTML from the JSON form).
"""

from azinfer.plan.model import (
    PLAN_FORMAT_VERSION,
    Action,
    GpuChoice,
    Plan,
    PlanWarning,
    Problem,
    ProblemCode,
    Reason,
    ResourceChange,
    WarningCode,
)
from azinfer.plan.planner import make_plan

__all__ = [
    "Action",
    "Reason",
    "ProblemCode",
    "Problem",
    "WarningCode",
    "PlanWarning",
    "GpuChoice",
    "ResourceChange",
    "Plan",
    "make_plan",
    "PLAN_FORMAT_VERSION",
]
