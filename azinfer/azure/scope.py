"""The AI Toolkit project an Azure operation works on, and the options that pick its resources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from azinfer.errors import AzureError
from azinfer.inputs import ResolvedInputs, resolve
from azinfer.inventory import InMemoryInventory
from azinfer.project import INFERENCE_CONFIG, InferenceConfig, Project, load_inference_config
from azinfer.resources import ResourceKind

__all__ = ["ProjectScope"]


@dataclass(frozen=True)
class ProjectScope:
    """The project, the inputs known without an inventory, and the caller's overrides."""

    project: Project
    base: ResolvedInputs
    """Subscription, resource group and names, resolved without an inventory (they fail early when unknown)."""
    options: Mapping[str, str | None] = field(default_factory=dict)
    """``subscription_id``, ``resource_group``, ``location`` as the caller gave them."""
    update: tuple[ResourceKind, ...] = ()

    @classmethod
    def of(cls, project: Project, *, update: tuple[ResourceKind, ...] = (), **options: str | None) -> ProjectScope:
        """The scope of ``project`` with the caller's overrides.

        :raises ResolutionError: when no subscription or resource group can be found.
        """
        return cls(project, resolve(project, None, **options), dict(options), update)

    @property
    def resource_group(self) -> str:
        """The target resource group."""
        return self.base.resource_group.value

    def resolve(self, inventory: InMemoryInventory) -> ResolvedInputs:
        """Every input, resolved against what exists."""
        return resolve(self.project, inventory, **self.options)

    def config(self) -> InferenceConfig:
        """``infra/inference.config.json`` as it is on disk now (empty when absent)."""
        path = self.project.root / INFERENCE_CONFIG
        return load_inference_config(path, display=INFERENCE_CONFIG) if path.exists() else InferenceConfig()

    def provisioned(self) -> InferenceConfig:
        """The config file of a provisioned endpoint.

        :raises AzureError: when it lacks a key: nothing is provisioned yet.
        """
        config = self.config()
        if not config.provisioned:
            raise AzureError(f"{INFERENCE_CONFIG}: {', '.join(config.missing)} not set: nothing is provisioned yet "
                             "(run 'azinfer up', or 'azinfer provision')")
        return config
