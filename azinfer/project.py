"""Stage 1: the AI Toolkit project files, loaded and validated.

An AI Toolkit project keeps its Azure files under ``infra/``::

    infra/provision/inference.parameters.json    what the user wants (ARM parameters file)
    infra/provision/finetuning.parameters.json   what fine-tuning asked for
    infra/finetuning.config.json                 what fine-tuning provisioning produced
    infra/inference.config.json                  what inference provisioning produced

:func:`load_project` reads them into a :class:`Project`, an immutable value
the resolver takes next. Every file but the inference parameters may be
absent; a file that is present must be valid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from azinfer._arguments import check_optional_text, check_path
from azinfer._jsonfile import read_json, validate
from azinfer.basemodel import BaseModel, read_base_model
from azinfer.errors import ProjectFileError
from azinfer.resources import ResourceKind

__all__ = [
    "GpuProfileType",
    "GpuSpec",
    "GPU_SPECS",
    "Authentication",
    "InferenceParameters",
    "FinetuningParameters",
    "FinetuningConfig",
    "InferenceConfig",
    "Project",
    "load_project",
    "load_inference_config",
    "load_inference_parameters",
    "INFERENCE_PARAMETERS",
    "FINETUNING_PARAMETERS",
    "FINETUNING_CONFIG",
    "INFERENCE_CONFIG",
    "DEFAULT_IMAGE",
    "CONFIG_KEYS",
]

INFERENCE_PARAMETERS = "infra/provision/inference.parameters.json"
FINETUNING_PARAMETERS = "infra/provision/finetuning.parameters.json"
FINETUNING_CONFIG = "infra/finetuning.config.json"
INFERENCE_CONFIG = "infra/inference.config.json"
EXAMPLE_MARKER = ".azinfer-example"
"""The file that marks azinfer's bundled example (``examples/phi3``); a copy of the example is no longer it."""

# vLLM's official OpenAI image: Python 3.12 with torch, CUDA, vLLM and uvicorn, so the start script installs
# nothing heavy. 0.32.0 is the vLLM whose CPU build CI tests; the cu129 build (CUDA 12.9) runs on CUDA 12
# drivers, where the plain tag (CUDA 13) needs driver 580+. docs/serve.md, "vLLM engine".
DEFAULT_IMAGE = "docker.io/vllm/vllm-openai:v0.32.0-cu129"


class GpuProfileType(str, Enum):
    """The GPU workload profile type the container app runs on."""

    NC24_A100 = "NC24-A100"
    """Dedicated A100 nodes (the AI Toolkit's choice); exists only from environment creation."""
    CONSUMPTION_NC24_A100 = "Consumption-GPU-NC24-A100"
    """Serverless A100: billed per second while replicas run, scales to zero."""
    CONSUMPTION_NC8AS_T4 = "Consumption-GPU-NC8as-T4"
    """Serverless T4 (16 GB, no bf16): billed per second while replicas run, scales to zero."""

    @property
    def serverless(self) -> bool:
        """Whether the profile is serverless (consumption) rather than dedicated."""
        return self.value.startswith("Consumption-")


@dataclass(frozen=True)
class GpuSpec:
    """What a GPU workload profile type gives one replica."""

    profile_name: str
    cpu: int
    memory: str
    serverless: bool


# What each profile type gives one replica, and the name azinfer gives a profile it creates.
GPU_SPECS: Mapping[GpuProfileType, GpuSpec] = {
    GpuProfileType.NC24_A100: GpuSpec("GPU", 24, "220Gi", False),
    GpuProfileType.CONSUMPTION_NC24_A100: GpuSpec("NC24-A100", 24, "220Gi", True),
    GpuProfileType.CONSUMPTION_NC8AS_T4: GpuSpec("NC8as-T4", 8, "56Gi", True),
}

class Authentication(str, Enum):
    """How clients authenticate to the endpoint."""

    API_KEY = "apiKey"
    """``Authorization: Bearer <key>``; the key is a Container Apps secret, never in a file."""
    NONE = "none"
    """A public endpoint: anyone who knows the URL can use the GPU."""


@dataclass(frozen=True)
class InferenceParameters:
    """``infra/provision/inference.parameters.json``: the AI Toolkit's parameters plus azinfer's.

    ``names`` holds only the names the file sets (a null name means the default).
    ``given`` lists the parameters the file sets, so provenance can tell a
    value the user chose from a default. ``None`` means "not set": the start
    command is then decided by :mod:`azinfer.start`, the GPU profile type by
    the planner (the reused environment's, else serverless A100).
    """

    default_commands: tuple[str, ...] | None = None
    maximum_instance_count: int = 2
    location: str | None = None
    names: Mapping[ResourceKind, str] = field(default_factory=dict)
    gpu_profile_type: GpuProfileType | None = None
    min_replicas: int | None = None
    max_replicas: int = 1
    image: str = DEFAULT_IMAGE
    target_port: int = 7860
    authentication: Authentication = Authentication.API_KEY
    registry_server: str | None = None
    """The registry the image is pulled from with credentials (``None``: an anonymous pull)."""
    registry_username: str | None = None
    """Its user name; the password comes at deploy time (``AZINFER_REGISTRY_PASSWORD``), never from a file."""
    registry_identity: str | None = None
    """Or: the resource ID of a user-assigned managed identity with ``AcrPull`` on the registry."""
    given: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))
        if self.default_commands is not None:
            object.__setattr__(self, "default_commands", tuple(self.default_commands))

    def to_parameters(self) -> dict[str, Any]:
        """The ``parameters`` object of an ARM parameters file holding these values."""
        values: dict[str, Any] = {
            "defaultCommands": None if self.default_commands is None else list(self.default_commands),
            "maximumInstanceCount": self.maximum_instance_count,
            "location": self.location,
        }
        for kind in ResourceKind:
            values[kind.parameter] = self.names.get(kind)
        values.update(
            gpuProfileType=None if self.gpu_profile_type is None else self.gpu_profile_type.value,
            minReplicas=self.min_replicas,
            maxReplicas=self.max_replicas,
            image=self.image,
            targetPort=self.target_port,
            authentication=self.authentication.value,
            registryServer=self.registry_server,
            registryUsername=self.registry_username,
            registryIdentity=self.registry_identity,
        )
        return {name: {"value": value} for name, value in values.items()}

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> InferenceParameters:
        """Build from an already validated ``parameters`` object."""
        v = {name: entry["value"] for name, entry in parameters.items()}
        kwargs: dict[str, Any] = {}
        simple = {
            "defaultCommands": "default_commands",
            "maximumInstanceCount": "maximum_instance_count",
            "location": "location",
            "minReplicas": "min_replicas",
            "maxReplicas": "max_replicas",
            "image": "image",
            "targetPort": "target_port",
            "registryServer": "registry_server",
            "registryUsername": "registry_username",
            "registryIdentity": "registry_identity",
        }
        for name, attr in simple.items():
            if v.get(name) is not None:
                kwargs[attr] = v[name]
        if v.get("gpuProfileType") is not None:
            kwargs["gpu_profile_type"] = GpuProfileType(v["gpuProfileType"])
        if v.get("authentication") is not None:
            kwargs["authentication"] = Authentication(v["authentication"])
        names = {kind: v[kind.parameter] for kind in ResourceKind if v.get(kind.parameter) is not None}
        given = frozenset(name for name, value in v.items() if value is not None)
        return cls(names=names, given=given, **kwargs)


@dataclass(frozen=True)
class FinetuningParameters:
    """What azinfer reads of ``infra/provision/finetuning.parameters.json``: names and location."""

    location: str | None = None
    names: Mapping[ResourceKind, str] = field(default_factory=dict)
    job_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))


@dataclass(frozen=True)
class FinetuningConfig:
    """``infra/finetuning.config.json``: the outputs of fine-tuning provisioning."""

    subscription_id: str | None = None
    resource_group: str | None = None
    storage_account_name: str | None = None
    file_share_name: str | None = None
    job_name: str | None = None


CONFIG_KEYS = (
    "SUBSCRIPTION_ID",
    "RESOURCE_GROUP_NAME",
    "STORAGE_ACCOUNT_NAME",
    "FILE_SHARE_NAME",
    "ACA_APP_NAME",
    "ACA_APP_ENDPOINT",
)
"""The keys of ``infra/inference.config.json`` azinfer owns; any other key is the user's and is kept."""


@dataclass(frozen=True)
class InferenceConfig:
    """``infra/inference.config.json``: where the endpoint lives. Holds no secret.

    The AI Toolkit ships the file with every key ``null`` (nothing provisioned
    yet), so each value may be ``None``. ``extra`` holds the keys azinfer does
    not own (``COMMANDS``...), in file order; writing the file keeps them.
    """

    subscription_id: str | None = None
    resource_group: str | None = None
    storage_account_name: str | None = None
    file_share_name: str | None = None
    app_name: str | None = None
    app_endpoint: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def owned(self) -> dict[str, str | None]:
        """The six keys azinfer owns, as the AI Toolkit names them."""
        return dict(zip(CONFIG_KEYS, (
            self.subscription_id, self.resource_group, self.storage_account_name,
            self.file_share_name, self.app_name, self.app_endpoint,
        ), strict=True))

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object: the owned keys, then the user's keys as they were."""
        return {**self.owned(), **{k: v for k, v in self.extra.items() if k not in CONFIG_KEYS}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InferenceConfig:
        """Build from an already validated JSON object (absent and ``null`` keys are ``None``)."""
        return cls(
            subscription_id=data.get("SUBSCRIPTION_ID"),
            resource_group=data.get("RESOURCE_GROUP_NAME"),
            storage_account_name=data.get("STORAGE_ACCOUNT_NAME"),
            file_share_name=data.get("FILE_SHARE_NAME"),
            app_name=data.get("ACA_APP_NAME"),
            app_endpoint=data.get("ACA_APP_ENDPOINT"),
            extra={k: v for k, v in data.items() if k not in CONFIG_KEYS},
        )

    @property
    def missing(self) -> tuple[str, ...]:
        """The owned keys that are not set yet."""
        return tuple(key for key, value in self.owned().items() if value is None)

    @property
    def provisioned(self) -> bool:
        """Whether every owned key is set (the endpoint exists)."""
        return not self.missing

    def cleared(self) -> InferenceConfig:
        """The same file with the owned keys ``null`` (after teardown), the user's keys kept."""
        return InferenceConfig(extra=self.extra)

    @property
    def url(self) -> str:
        """The endpoint as an ``https://`` URL, whether the file holds an FQDN or a URL.

        :raises ProjectFileError: when ``ACA_APP_ENDPOINT`` is not set.
        """
        if self.app_endpoint is None:
            raise ProjectFileError(INFERENCE_CONFIG, "/ACA_APP_ENDPOINT", "is null: nothing is provisioned yet (run azinfer provision)")
        endpoint = self.app_endpoint.rstrip("/")
        return endpoint if "://" in endpoint else f"https://{endpoint}"


@dataclass(frozen=True)
class Project:
    """The AI Toolkit project files, loaded and validated. Absent files are ``None``."""

    root: Path
    inference_parameters: InferenceParameters
    finetuning_parameters: FinetuningParameters | None = None
    finetuning_config: FinetuningConfig | None = None
    inference_config: InferenceConfig | None = None
    base_model: BaseModel | None = None
    """The base model ``finetuning/olive-config.json`` names (:mod:`azinfer.basemodel`); ``None``: no such file."""


def _load_validated(root: Path, relative: str, schema: str) -> Any:
    data = read_json(root / relative, display=relative)
    validate(data, schema, display=relative)
    return data


def _names_from(parameters: Mapping[str, Any]) -> dict[ResourceKind, str]:
    return {
        kind: entry["value"]
        for kind in ResourceKind
        if isinstance(entry := parameters.get(kind.parameter), dict) and entry.get("value") is not None
    }


def load_inference_parameters(path: str | os.PathLike[str], *, display: str | None = None) -> InferenceParameters:
    """Load and validate one inference parameters file.

    :raises ProjectFileError: when the file is missing, not JSON, or does not
        match ``schemas/inference.parameters.schema.json`` (an unknown
        parameter names the closest valid one).
    """
    data = read_json(Path(path), display=display or str(path))
    validate(data, "inference.parameters.schema.json", display=display or str(path))
    parameters = InferenceParameters.from_parameters(data["parameters"])
    _check_registry(parameters, display or str(path))
    return parameters


def _check_registry(parameters: InferenceParameters, display: str) -> None:
    """The registry parameters go together: a server for a user name or an identity, one of them, the image on it."""
    server = parameters.registry_server
    for name, value in (("registryUsername", parameters.registry_username),
                        ("registryIdentity", parameters.registry_identity)):
        if value is not None and server is None:
            raise ProjectFileError(display, f"/parameters/{name}",
                                   "registryServer is needed as well: the registry these credentials are for")
    if parameters.registry_username is not None and parameters.registry_identity is not None:
        raise ProjectFileError(display, "/parameters/registryIdentity",
                               "either registryUsername (with a password) or registryIdentity, not both")
    if server is not None and not parameters.image.lower().startswith(server.lower().rstrip("/") + "/"):
        raise ProjectFileError(
            display, "/parameters/registryServer",
            f"the image {parameters.image!r} is not on {server!r}: Container Apps uses a registry's credentials "
            f"only for images named <server>/<repository>:<tag>", hint="set image to an image on that registry")


def load_inference_config(path: str | os.PathLike[str], *, display: str | None = None) -> InferenceConfig:
    """Load and validate an ``inference.config.json`` (written by azinfer or filled in by hand).

    :raises ProjectFileError: when the file is missing, not JSON, or does not
        match ``schemas/inference.config.schema.json``.
    :raises ArgumentError: when ``path`` is no path or ``display`` no string.
    """
    path = check_path("load_inference_config", "path", path)
    display = check_optional_text("load_inference_config", "display", display)
    data = read_json(path, display=display or str(path))
    validate(data, "inference.config.schema.json", display=display or str(path))
    return InferenceConfig.from_json(data)


def _not_a_project(base: Path) -> ProjectFileError:
    """Why ``base`` is no project: it does not exist, is a file, or is a folder inside one (which to pass)."""
    if not os.path.lexists(base):
        return ProjectFileError(str(base), "", "expected an AI Toolkit project folder: it does not exist")
    if not base.is_dir():
        return ProjectFileError(str(base), "", "expected an AI Toolkit project folder: it is a file")
    for parent in base.resolve().parents:
        if (parent / "infra").is_dir():
            relative = os.path.relpath(parent)
            shown = relative if not relative.startswith("../..") else str(parent)
            return ProjectFileError(str(base), "", "expected an AI Toolkit project folder with an infra/ folder",
                                    hint=f"it is inside the project {shown}: pass {shown}")
    return ProjectFileError(str(base), "", "expected an AI Toolkit project folder with an infra/ folder")


def load_project(root: str | os.PathLike[str] = ".") -> Project:
    """Load the AI Toolkit project in ``root``.

    Only ``infra/`` must exist; a missing inference parameters file means
    every parameter takes its default.

    :raises ProjectFileError: when ``root`` is no AI Toolkit project or a file
        that is present is invalid; the message names the file, the JSON
        pointer and what was expected.
    :raises ArgumentError: when ``root`` is no path.
    """
    base = check_path("load_project", "root", root)
    if not (base / "infra").is_dir():
        raise _not_a_project(base)

    def present(relative: str) -> bool:
        # lexists: a dangling link in place of a file is reported, not mistaken for an absent file.
        return os.path.lexists(base / relative)

    inference = (
        load_inference_parameters(base / INFERENCE_PARAMETERS, display=INFERENCE_PARAMETERS)
        if present(INFERENCE_PARAMETERS)
        else InferenceParameters()
    )
    finetuning = None
    if present(FINETUNING_PARAMETERS):
        data = _load_validated(base, FINETUNING_PARAMETERS, "finetuning.parameters.schema.json")
        params = data["parameters"]
        finetuning = FinetuningParameters(
            location=(params.get("location") or {}).get("value"),
            names=_names_from(params),
            job_name=(params.get("acaJobName") or {}).get("value"),
        )
    ft_config = None
    if present(FINETUNING_CONFIG):
        data = _load_validated(base, FINETUNING_CONFIG, "finetuning.config.schema.json")
        ft_config = FinetuningConfig(
            subscription_id=data.get("SUBSCRIPTION_ID"),
            resource_group=data.get("RESOURCE_GROUP_NAME"),
            storage_account_name=data.get("STORAGE_ACCOUNT_NAME"),
            file_share_name=data.get("FILE_SHARE_NAME"),
            job_name=data.get("ACA_JOB_NAME"),
        )
    inference_config = (
        load_inference_config(base / INFERENCE_CONFIG, display=INFERENCE_CONFIG) if present(INFERENCE_CONFIG) else None
    )
    return Project(base, inference, finetuning, ft_config, inference_config, read_base_model(base))
