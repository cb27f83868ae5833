"""Named checks of a plan: the problems that block it and the warnings it carries.

Each check is a small pure function; :data:`PROBLEM_CHECKS` and
:data:`WARNING_CHECKS` list them in the order their findings appear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from azinfer.inputs import ResolvedInputs, resource_group_id
from azinfer.inventory import ResourceFacts
from azinfer.plan.coldstart import ingress_seconds
from azinfer.plan.fit import Verdict
from azinfer.plan.model import Action, Plan, PlanWarning, Problem, ProblemCode, WarningCode
from azinfer.project import Authentication
from azinfer.resources import ResourceKind

__all__ = ["PROBLEM_CHECKS", "WARNING_CHECKS", "Facts", "fit_problems", "region_key"]

Facts = Mapping[ResourceKind, "ResourceFacts | None"]
"""What exists under each resolved name (``None``: nothing)."""


def region_key(location: str) -> str:
    """ARM compares regions without case or spaces ("East US" == "eastus")."""
    return location.replace(" ", "").lower()


def region_matches(inputs: ResolvedInputs, facts: Facts) -> Iterator[Problem]:
    """The existing environment and app are in the plan's region (an app must be in its environment's)."""
    location = inputs.location.value
    if location is None:
        return
    for kind in (ResourceKind.ENVIRONMENT, ResourceKind.CONTAINER_APP):
        existing = facts[kind]
        if existing is not None and existing.location and region_key(existing.location) != region_key(location):
            yield Problem(
                ProblemCode.REGION_MISMATCH,
                kind,
                f"{kind.label} {inputs.name(kind)!r} is in {existing.location}, but the plan's location is "
                f"{location} (from {inputs.location.detail}); a container app must be in its environment's "
                "region. Remove the location or use the existing resource's region.",
            )


def shared_key_allowed(inputs: ResolvedInputs, facts: Facts) -> Iterator[Problem]:
    """The storage account allows shared-key access, which an Azure Files mount needs."""
    account = facts[ResourceKind.STORAGE_ACCOUNT]
    if account is not None and account.allow_shared_key_access is False:
        yield Problem(
            ProblemCode.SHARED_KEY_DISABLED,
            ResourceKind.STORAGE_ACCOUNT,
            f"storage account {inputs.name(ResourceKind.STORAGE_ACCOUNT)!r} has shared-key access disabled; "
            "an Azure Files mount in Container Apps needs the account key. Enable 'Allow storage account key "
            "access' on the account, or name another storage account.",
        )


def storage_mounts_the_share(inputs: ResolvedInputs, facts: Facts) -> Iterator[Problem]:
    """A reused environment storage mounts the plan's share of the plan's account."""
    env_storage = facts[ResourceKind.ENVIRONMENT_STORAGE]
    want_account = inputs.name(ResourceKind.STORAGE_ACCOUNT)
    want_share = inputs.name(ResourceKind.FILE_SHARE)
    if env_storage is not None and (
        (env_storage.account_name or "").lower() != want_account.lower()
        or (env_storage.share_name or "").lower() != want_share.lower()
    ):
        yield Problem(
            ProblemCode.STORAGE_BOUND_ELSEWHERE,
            ResourceKind.ENVIRONMENT_STORAGE,
            f"environment storage {inputs.name(ResourceKind.ENVIRONMENT_STORAGE)!r} mounts share "
            f"{env_storage.share_name!r} of account {env_storage.account_name!r}, not {want_share!r} of "
            f"{want_account!r}; set acaEnvironmentStorageName to another name.",
        )


def app_in_the_environment(inputs: ResolvedInputs, facts: Facts) -> Iterator[Problem]:
    """An existing app lives in the plan's environment (an app cannot move)."""
    app = facts[ResourceKind.CONTAINER_APP]
    env_name = inputs.name(ResourceKind.ENVIRONMENT)
    if app is None or not app.environment_id:
        return
    want_env_id = (
        resource_group_id(inputs.subscription_id.value, inputs.resource_group.value)
        + f"/providers/Microsoft.App/managedEnvironments/{env_name}"
    )
    if app.environment_id.lower() != want_env_id.lower():
        yield Problem(
            ProblemCode.APP_IN_OTHER_ENVIRONMENT,
            ResourceKind.CONTAINER_APP,
            f"container app {inputs.name(ResourceKind.CONTAINER_APP)!r} runs in {app.environment_id}, "
            f"not in environment {env_name!r}; an app cannot move. Set acaAppName to another name.",
        )


PROBLEM_CHECKS: tuple[Callable[[ResolvedInputs, Facts], Iterator[Problem]], ...] = (
    region_matches,
    shared_key_allowed,
    storage_mounts_the_share,
    app_in_the_environment,
)
"""The checks of what exists, in the order their problems are listed (after the GPU profile's)."""


def start_command(plan: Plan) -> Iterator[PlanWarning]:
    """The toolkit's stock start was replaced, or a command the user wrote runs."""
    start = plan.start
    if start.replaced is not None:
        yield PlanWarning(WarningCode.START_COMMAND_REPLACED, start.reason)
    elif not start.serves_azinfer:
        yield PlanWarning(
            WarningCode.USER_START_COMMAND,
            "your start command runs instead of azinfer's server: authentication (the API key in the "
            "AZINFER_API_KEY environment variable) and health routes are up to that code; the probes only "
            "check that its port answers",
        )


def cold_start(plan: Plan) -> Iterator[PlanWarning]:
    """A serverless app that scales to zero makes the first request wait, maybe past ingress's limit."""
    if plan.gpu.serverless and plan.min_replicas == 0:
        cold = plan.cold_start
        wait = "often minutes" if cold is None else cold.summary()
        yield PlanWarning(
            WarningCode.COLD_START,
            "the app scales to zero (serverless GPU, minReplicas 0): the first request after an idle period "
            f"waits for a replica to start ({wait}), and Container Apps ingress ends a request after about "
            f"{ingress_seconds()} s, so it may time out; set minReplicas to 1 to keep one replica warm (billed while "
            "it runs)",
        )


def public_endpoint(plan: Plan) -> Iterator[PlanWarning]:
    """``authentication: none`` lets anyone use the GPU."""
    if plan.inputs.parameters.authentication is Authentication.NONE:
        yield PlanWarning(WarningCode.NO_AUTHENTICATION, "authentication is 'none': anyone who knows the URL can use the GPU")


def environment_custom_domain(plan: Plan) -> Iterator[PlanWarning]:
    """An update writes the environment whole; a custom domain's certificate is the one part it cannot write back."""
    change = plan.change(ResourceKind.ENVIRONMENT)
    domain = change.existing_unmodeled.get("properties", {}).get("customDomainConfiguration")
    if change.action is Action.UPDATE and domain:
        yield PlanWarning(
            WarningCode.ENVIRONMENT_SECRET_NOT_CARRIED,
            f"environment {change.name.value!r} is updated and has a custom domain "
            f"({domain.get('dnsSuffix', 'set')}): its other settings are written back as they are, but Azure never "
            "returns the domain's certificate, so the update sends none; check the environment's custom domain "
            "after the deployment, or deploy into another environment (acaEnvironmentName)",
        )


def fit_problems(plan: Plan) -> Iterator[Problem]:
    """A model that does not fit the GPU would crash its replica while loading: block the plan."""
    if plan.fit is not None and plan.fit.verdict is Verdict.DOES_NOT_FIT:
        yield Problem(ProblemCode.MODEL_DOES_NOT_FIT, ResourceKind.CONTAINER_APP,
                      f"model {plan.fit.model.path if plan.fit.model else ''}: {plan.fit.summary()}")


def fit_tight(plan: Plan) -> Iterator[PlanWarning]:
    """A model that fits with room for fewer full-context sequences serves fewer requests at once."""
    if plan.fit is not None and plan.fit.verdict is Verdict.TIGHT:
        yield PlanWarning(WarningCode.MODEL_FIT_TIGHT, f"model {plan.fit.model.path if plan.fit.model else ''}: "
                          f"{plan.fit.summary()}")


WARNING_CHECKS: tuple[Callable[[Plan], Iterator[PlanWarning]], ...] = (
    start_command, cold_start, public_endpoint, environment_custom_domain, fit_tight,
)
"""The warnings of a plan, in the order they are listed."""
