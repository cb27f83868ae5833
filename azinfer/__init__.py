"""azinfer: from a VS Code AI Toolkit fine-tuning project to a GPU inference endpoint on Azure Container Apps."""

from __future__ import annotations

from azinfer.errors import AzinferError
from azinfer.names import unique_string

__version__ = "0.1.0"

__all__ = ["AzinferError", "unique_string", "__version__"]
