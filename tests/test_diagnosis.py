"""The status diagnosis: Container Apps' reports in, one cause and its fix out (table-driven).

Message shapes, as Container Apps writes them:
- ``ContainerTerminated: Container '…' was terminated with exit code '' and reason 'ImagePullFailure'. Pull image:
  … failed with exit code: 1, error: …`` with the registry's answer after it: microsoft/azure-container-apps#1670
  (Docker Hub's ``429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate
  limit``, the team's diagnosis there), the registry answers ``unauthorized: authentication required`` and
  ``manifest unknown`` as containerd prints them (kubernetes/kubernetes#131521, openshift/origin#19538).
- ``PullingImage``/``PulledImage``, ``ContainerTerminated … exit code '1' and reason 'ProcessExited'`` and the
  system stream's line shape: microsoft/azure-container-apps#1371.
- ``Deployment Progress Deadline Exceeded. 0/1 replicas ready.`` as a revision's running state details:
  microsoft/azure-container-apps#1219.
- ``ProbeFailed``, ``OOMKilled``, ``FailedScheduling … Insufficient nvidia.com/gpu``: Kubernetes' event reasons,
  which Container Apps' controller passes on.
"""

from __future__ import annotations

import pytest

from azinfer.azure.app import ReplicaStatus, RevisionStatus
from azinfer.azure.diagnosis import Cause, diagnose

IMAGE = "docker.io/vllm/vllm-openai:v0.32.0-cu129"
STAMP = "2026-12-04 19:10:01 +0000 UTC"


def system(type_: str, reason: str, msg: str) -> str:
    return f"{STAMP} {type_} {reason}: {msg}"


def pull_failure(error: str) -> str:
    return system("Warning", "ContainerTerminated",
                  f"Container 'inference' was terminated with exit code '' and reason 'ImagePullFailure'. "
                  f"Pull image: {IMAGE} failed with exit code: 1, error: {error}")


def revision(state: str = "Processing", *, ready: bool = False, restarts: int = 0, details: str = "",
             error: str = "") -> RevisionStatus:
    replica = ReplicaStatus("app--abc-5f7d-x1", "Running" if ready else "NotRunning", ready, restarts, details)
    return RevisionStatus("app--abc", True, "Provisioning", state, "None", (replica,), error)


PULLING = system("Normal", "PullingImage", f"Pulling image '{IMAGE}'")
PULLED = system("Normal", "PulledImage", f"Successfully pulled image '{IMAGE}'")

CASES = {
    "docker hub throttles": (
        revision(), [PULLING, pull_failure(
            "failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/"
            "vllm/vllm-openai/manifests/v0.32.0-cu129: 429 Too Many Requests - Server message: toomanyrequests: "
            "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading")],
        [], None, Cause.IMAGE_THROTTLED, "az acr import"),
    "registry refuses the credentials": (
        revision(), [PULLING, pull_failure('failed to resolve reference "myacr.azurecr.io/vllm:v1": failed to '
                                           'authorize: failed to fetch anonymous token: 401 Unauthorized')],
        [], None, Cause.IMAGE_UNAUTHORIZED, "AZINFER_REGISTRY_PASSWORD"),
    "tag does not exist": (
        revision(), [pull_failure('failed to resolve reference "docker.io/vllm/vllm-openai:v9": '
                                  'docker.io/vllm/vllm-openai:v9: not found')],
        [], None, Cause.IMAGE_NOT_FOUND, "image name and tag"),
    "manifest unknown in the replica's details": (
        revision(details="ImagePullBackOff: manifest unknown"), [], [], None, Cause.IMAGE_NOT_FOUND, "image"),
    "other pull failure": (
        revision(), [pull_failure("dial tcp: i/o timeout")], [], None, Cause.IMAGE_PULL, "i/o timeout"),
    "a later pull succeeded, then the container exits": (
        revision("Failed", restarts=3, details="CrashLoopBackOff"),
        [pull_failure("429 Too Many Requests - Server message: toomanyrequests"), PULLING, PULLED,
         system("Warning", "ContainerTerminated",
                "Container 'inference' was terminated with exit code '1' and reason 'ProcessExited'")],
        ["azinfer: no azinfer wheel under /mount/.azinfer/wheels"], None, Cause.CONTAINER_EXITED,
        "no azinfer wheel under /mount/.azinfer/wheels"),
    "out of memory": (
        revision("Failed", restarts=1),
        [PULLED, system("Warning", "ContainerTerminated",
                        "Container 'inference' was terminated with exit code '137' and reason 'OOMKilled'")],
        [], None, Cause.OUT_OF_MEMORY, "gpuProfileType"),
    "CUDA out of memory in the console": (
        revision(restarts=2), [PULLED],
        ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"], None, Cause.OUT_OF_MEMORY,
        "larger GPU profile"),
    "startup probe fails": (
        revision(), [PULLED, system("Warning", "ProbeFailed", "Probe of StartUp failed with status code: 1")],
        ["INFO:     Waiting for application startup."], None, Cause.PROBE_FAILED, "Waiting for application startup"),
    "no GPU node": (
        revision(), [system("Warning", "FailedScheduling",
                            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")],
        [], None, Cause.NO_GPU_CAPACITY, "azinfer plan"),
    "environment still being set up": (
        None, [], [], "InfrastructureSetupInProgress", Cause.ENVIRONMENT_PROVISIONING, "most of an hour"),
    "deadline exceeded with nothing else": (
        revision(error="Deployment Progress Deadline Exceeded. 0/1 replicas ready."), [], [], "Succeeded",
        Cause.NOT_READY, "azinfer logs"),
    "restarts without a message": (
        revision(restarts=4), [PULLED], ["Traceback (most recent call last):", "ValueError: bad adapter"], None,
        Cause.CONTAINER_EXITED, "ValueError: bad adapter"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_report_names_its_cause_and_fix(name: str) -> None:
    rev, lines, console, env_state, cause, in_fix = CASES[name]
    diagnosis = diagnose(rev, lines, console_lines=console, environment="aienvx", environment_state=env_state)
    assert diagnosis is not None, name
    assert diagnosis.cause is cause, (name, diagnosis)
    assert in_fix in diagnosis.to_text()
    assert "\n" not in diagnosis.to_text()


def test_a_serving_revision_needs_no_diagnosis_whatever_the_log_held() -> None:
    serving = revision("Running", ready=True)
    assert diagnose(serving, [pull_failure("429 Too Many Requests - toomanyrequests")]) is None


def test_nothing_to_say_is_none() -> None:
    assert diagnose(revision(), [PULLING]) is None
    assert diagnose(None) is None
    # Readiness fails while the model loads (azinfer's /ready answers 503 until then): not a fault.
    loading = system("Warning", "ProbeFailed", "Probe of Readiness failed with status code: 503")
    assert diagnose(revision(), [PULLED, loading]) is None
    # A replica stopped by the platform (a restart, a deactivation) exits 143 or 137: not the container's fault.
    stopped = system("Normal", "ContainerTerminated",
                     "Container 'inference' was terminated with exit code '143' and reason 'Error'")
    assert diagnose(revision(), [PULLED, stopped]) is None


def test_a_digest_holding_401_or_404_is_no_refusal() -> None:
    digest = "sha256:0401abc404def"
    found = diagnose(revision(), [pull_failure(f"failed to copy {digest}: dial tcp: i/o timeout")])
    assert found is not None and found.cause is Cause.IMAGE_PULL


def test_the_environment_comes_first() -> None:
    lines = [pull_failure("toomanyrequests")]
    diagnosis = diagnose(revision(), lines, environment="aienvx", environment_state="Waiting")
    assert diagnosis is not None and diagnosis.cause is Cause.ENVIRONMENT_PROVISIONING
    assert "aienvx" in diagnosis.summary and "Waiting" in diagnosis.summary
