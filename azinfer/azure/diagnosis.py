"""Why an endpoint does not serve, in one line with the fix: a pure function of what Container Apps reports.

:func:`diagnose` reads the revision's state (its replicas' ``runningStateDetails``,
its ``provisioningError``), the app's system log lines (as ``azinfer logs
--system`` prints them: ``<time> <Type> <Reason>: <Msg>``), the container's
last console lines and the environment's provisioning state, and names the
first cause it recognises, in this order: the environment still being set
up, an image pull refused or throttled, no GPU capacity or quota, out of
memory, failing probes, a container that exits, a revision that never got
ready. Each rule is a row of :data:`RULES`; the message shapes they match are
Container Apps' own (sources in ``tests/test_diagnosis.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from azinfer.azure.app import RevisionStatus

__all__ = ["Cause", "Diagnosis", "RULES", "IMAGE_RULES", "IMAGE_CAUSES", "diagnose", "IMAGE_IMPORT_HINT", "SYSTEM_TAIL"]

SYSTEM_TAIL = 50
"""System log lines a diagnosis reads (an image pull retried with back-off writes a few a minute)."""
IMAGE_IMPORT_HINT = ("import it into your Azure Container Registry (az acr import) and set image and registryServer, "
                     "see docs/parameters.md#images")


class Cause(str, Enum):
    """What keeps the endpoint from serving."""

    ENVIRONMENT_PROVISIONING = "environment-provisioning"
    """The Container Apps environment is still being created or updated."""
    IMAGE_THROTTLED = "image-throttled"
    """The registry refused the pull for its rate limit (Docker Hub's 429 ``toomanyrequests``)."""
    IMAGE_UNAUTHORIZED = "image-unauthorized"
    """The registry refused the pull: no or wrong credentials."""
    IMAGE_NOT_FOUND = "image-not-found"
    """The image or its tag does not exist (``manifest unknown``)."""
    IMAGE_PULL = "image-pull"
    """The image cannot be pulled, for another reason."""
    NO_GPU_CAPACITY = "no-gpu-capacity"
    """No GPU node could be scheduled: no capacity in the region now, or no quota."""
    OUT_OF_MEMORY = "out-of-memory"
    """The container, or the model on the GPU, ran out of memory."""
    PROBE_FAILED = "probe-failed"
    """The container runs but does not answer its probes."""
    CONTAINER_EXITED = "container-exited"
    """The container exits and is restarted again and again."""
    NOT_READY = "not-ready"
    """The revision never got a ready replica in time, and nothing above explains it."""


@dataclass(frozen=True)
class Diagnosis:
    """One cause, the line that showed it, and what to do."""

    cause: Cause
    summary: str
    """What is wrong, in words."""
    fix: str
    """What to do about it."""
    evidence: str = ""
    """The report it was read from (a system log line, a state), shortened."""

    def to_text(self) -> str:
        """One line: what is wrong, then the fix."""
        return f"{self.summary}: {self.fix}"


@dataclass(frozen=True)
class Rule:
    """A cause, the pattern of the report that shows it, and the words for it."""

    cause: Cause
    pattern: re.Pattern[str]
    summary: str
    fix: str


def _rule(cause: Cause, pattern: str, summary: str, fix: str) -> Rule:
    return Rule(cause, re.compile(pattern, re.IGNORECASE), summary, fix)


# A report is about the image pull when it says so (Container Apps' ``ImagePullFailure``, Kubernetes' words).
_PULL = re.compile(r"ImagePull|ErrImagePull|Pull image|Failed to pull|pulling image .*fail|manifest unknown",
                   re.IGNORECASE)

IMAGE_RULES: tuple[Rule, ...] = (
    _rule(Cause.IMAGE_THROTTLED, r"toomanyrequests|429 Too Many Requests|pull rate limit|rate limit",
          "the image pull is throttled by the registry (429 toomanyrequests: Docker Hub's limit for anonymous pulls)",
          f"{IMAGE_IMPORT_HINT}, or give Docker Hub credentials (registryServer docker.io, registryUsername, "
          "AZINFER_REGISTRY_PASSWORD), then 'azinfer provision'"),
    _rule(Cause.IMAGE_UNAUTHORIZED,
          r"unauthorized|authentication required|\b401\b|access denied|requested access to the resource is denied|"
          r"pull access denied|denied:",
          "the registry refused the image pull (unauthorized)",
          "check registryServer and registryUsername with AZINFER_REGISTRY_PASSWORD (or give registryIdentity the "
          "AcrPull role on the registry), then 'azinfer provision'"),
    _rule(Cause.IMAGE_NOT_FOUND, r"manifest unknown|not found|\b404\b|does not exist|no such",
          "the image does not exist (manifest unknown)",
          "check the image name and tag in infra/provision/inference.parameters.json (image), then 'azinfer provision'"),
)
"""Which image-pull failure it is; a report about the pull that none matches is :attr:`Cause.IMAGE_PULL`."""
IMAGE_CAUSES = frozenset({*(rule.cause for rule in IMAGE_RULES), Cause.IMAGE_PULL})

RULES: tuple[Rule, ...] = (
    _rule(Cause.NO_GPU_CAPACITY,
          r"Insufficient nvidia\.com/gpu|FailedScheduling|nodes are available|not enough capacity|"
          r"no capacity|capacity (?:is )?(?:unavailable|not available)|exceed\w* (?:the )?quota|QuotaExceeded|"
          r"WorkloadProfile\w*Quota",
          "no GPU node could be started for the replica (no capacity in the region now, or no quota)",
          "'azinfer plan' shows the quota; request more, wait and try again, or choose another location or "
          "gpuProfileType"),
    _rule(Cause.OUT_OF_MEMORY, r"OOMKilled|out of memory|OutOfMemoryError",
          "the container ran out of memory (the model does not fit)",
          "choose a larger GPU profile (gpuProfileType) or a smaller or quantized model"),
    # Readiness failing is what azinfer's /ready does while the model loads: only startup and liveness count.
    _rule(Cause.PROBE_FAILED, r"(?:Startup|Liveness) probe failed|Probe of (?:StartUp|Startup|Liveness) failed",
          "the container does not answer its health probes",
          "see 'azinfer logs' for why the server does not answer on targetPort; a start command of your own must "
          "listen on targetPort"),
    _rule(Cause.CONTAINER_EXITED,
          r"CrashLoopBackOff|crash looping|ProcessExited|terminated with exit code '(?!137'|143'|0')\d+'|"
          r"BackOff.*restarting",
          "the container exits and is restarted again and again",
          "fix the start command or the share ('azinfer deploy' puts azinfer's server there)"),
)
"""The causes after the image pull, in the order they are tried."""

_ENVIRONMENT_DONE = frozenset({"succeeded", "failed", "canceled", "unknown", ""})
_DEADLINE = re.compile(r"Deadline Exceeded|Operation expired|replicas ready", re.IGNORECASE)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _reports(revision: RevisionStatus | None, system_lines: Sequence[str]) -> list[str]:
    """What Container Apps said, newest last: the system log, then the revision's and replicas' state words."""
    reports = [line for line in system_lines if line.strip()]
    if revision is not None:
        reports += [r.details for r in revision.replicas if r.details]
        if revision.provisioning_error:
            reports.append(revision.provisioning_error)
    return reports


def _image_failure(reports: Sequence[str]) -> Diagnosis | None:
    """The newest report about a failed pull, unless a pull succeeded after it."""
    for report in reversed(reports):
        if re.search(r"Successfully pulled image|PulledImage", report, re.IGNORECASE):
            return None
        if _PULL.search(report):
            for rule in IMAGE_RULES:
                if rule.pattern.search(report):
                    return Diagnosis(rule.cause, rule.summary, rule.fix, _short(report))
            # The registry's answer follows "error:" in Container Apps' message; the whole line otherwise.
            answer = report.rsplit("error:", 1)[-1].strip()
            return Diagnosis(Cause.IMAGE_PULL, f"the image cannot be pulled ({_short(answer, 100)})",
                             f"check that the registry answers, or {IMAGE_IMPORT_HINT}", _short(report))
    return None


def _healthy(revision: RevisionStatus) -> bool:
    return (revision.running_state.lower() == "running" and bool(revision.replicas)
            and all(r.ready for r in revision.replicas))


def diagnose(revision: RevisionStatus | None, system_lines: Sequence[str] = (), *,
             console_lines: Sequence[str] = (), environment: str | None = None,
             environment_state: str | None = None) -> Diagnosis | None:
    """The first cause that the reports show, or ``None`` when the revision serves or nothing explains it.

    :param revision: the serving (or newest) revision's state; ``None`` when the app has none yet.
    :param system_lines: the app's system log, oldest first, as ``azinfer logs --system`` prints it.
    :param console_lines: the container's last console lines, oldest first (shown when it exits).
    :param environment: the environment's name; :param environment_state: its ``provisioningState``.
    """
    state = (environment_state or "").strip()
    if state.lower() not in _ENVIRONMENT_DONE:
        return Diagnosis(Cause.ENVIRONMENT_PROVISIONING,
                         f"the Container Apps environment {environment or ''} is still being set up "
                         f"(state {state})".replace("  ", " "),
                         "a GPU environment can take most of an hour; 'azinfer provision' attaches to the "
                         "deployment and shows its progress, 'azinfer status' asks again", state)
    if revision is not None and _healthy(revision):
        return None
    reports = _reports(revision, system_lines)
    image = _image_failure(reports)
    if image is not None:
        return image
    tail = [line for line in console_lines if line.strip()]
    for rule in RULES:
        hit = next((r for r in reversed(reports + (tail if rule.cause is Cause.OUT_OF_MEMORY else []))
                    if rule.pattern.search(r)), None)
        if hit is None:
            continue
        fix = rule.fix
        if rule.cause in (Cause.CONTAINER_EXITED, Cause.PROBE_FAILED) and tail:
            fix = f"its last log line: {_short(tail[-1])!r}; {fix}"
        return Diagnosis(rule.cause, rule.summary, fix, _short(hit))
    if revision is not None and any(r.restarts for r in revision.replicas):
        restarts = sum(r.restarts for r in revision.replicas)
        fix = RULES[-1].fix if not tail else f"its last log line: {_short(tail[-1])!r}; {RULES[-1].fix}"
        return Diagnosis(Cause.CONTAINER_EXITED, f"the container exited and was restarted {restarts} time(s)", fix,
                         revision.describe())
    deadline = next((r for r in reversed(reports) if _DEADLINE.search(r)), None)
    if deadline is not None:
        return Diagnosis(Cause.NOT_READY, "the revision never got a ready replica in time",
                         "see 'azinfer logs' and 'azinfer logs --system' for what the replica did", _short(deadline))
    return None
