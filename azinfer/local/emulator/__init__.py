"""An Azure Resource Manager emulator: what ``azinfer up --local`` runs, and what azinfer's tests talk to.

HTTPS on 127.0.0.1 (a ``trustme`` CA), stateful, driven through the real Azure
SDK clients and the real azure-identity credential flow: ARM and Entra ID, the
Azure Files data plane, Container Apps' revisions, replicas, log stream and
ingress.  See :class:`~.server.ArmEmulator`, :func:`~.fixtures.seed_finetuning_group`
and ``docs/emulator.md``; ``python -m azinfer.local.emulator`` runs it on its own.
"""

from .containerapps import ReplicaStart
from .expressions import ExpressionError, Unknown
from .faults import Fault, FaultSet
from .fileshare import ShareData, StorageError
from .fixtures import FinetuningGroup, seed_finetuning_group, seed_finetuning_share, seed_share_from
from .logstream import StreamSettings
from .messages import ArmError, Request, RequestRecord, Response
from .server import ArmEmulator
from .state import Resource, State, parse_resource_id

__all__ = [
    "ArmEmulator",
    "ArmError",
    "ExpressionError",
    "Fault",
    "FaultSet",
    "FinetuningGroup",
    "ReplicaStart",
    "Request",
    "RequestRecord",
    "Resource",
    "Response",
    "ShareData",
    "State",
    "StorageError",
    "StreamSettings",
    "Unknown",
    "parse_resource_id",
    "seed_finetuning_group",
    "seed_finetuning_share",
    "seed_share_from",
]
