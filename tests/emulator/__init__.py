"""An Azure Resource Manager emulator for azinfer's tests.

HTTPS on 127.0.0.1 (a ``trustme`` CA), stateful, driven through the real Azure
SDK clients and the real azure-identity credential flow.  See
:class:`~.server.ArmEmulator` and :func:`~.fixtures.seed_finetuning_group`.
"""

from .expressions import ExpressionError, Unknown
from .faults import Fault, FaultSet
from .fixtures import FinetuningGroup, seed_finetuning_group
from .server import ArmEmulator, ArmError, Request, RequestRecord, Response
from .state import Resource, State, parse_resource_id

__all__ = [
    "ArmEmulator",
    "ArmError",
    "ExpressionError",
    "Fault",
    "FaultSet",
    "FinetuningGroup",
    "Request",
    "RequestRecord",
    "Resource",
    "Response",
    "State",
    "Unknown",
    "parse_resource_id",
    "seed_finetuning_group",
]
