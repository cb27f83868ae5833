"""How the Azure SDK's exceptions become azinfer's: nothing from ``azure.*`` reaches a caller.

A 403 names the role (and the scope) that would allow the call; a 401 or a
credential that gives no token is a :class:`~azinfer.errors.CredentialError`;
any other answer or a connection that fails is one line of
:class:`~azinfer.errors.AzureError` saying what azinfer was doing and what
Azure answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from azinfer.azure.clients import SIGN_IN_HELP
from azinfer.errors import AzinferError, AzureError, AzurePermissionError, CredentialError

if TYPE_CHECKING:  # pragma: no cover
    from azure.core.exceptions import AzureError as SdkError
    from azure.core.exceptions import HttpResponseError

__all__ = ["raise_if_forbidden", "translate", "translated", "translated_iterator"]

T = TypeVar("T")


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0].strip() if lines else ""


def raise_if_forbidden(exc: HttpResponseError, *, role: str, scope: str, doing: str) -> None:
    """Raise an :class:`AzurePermissionError` when ``exc`` is a 403: which role on which scope allows ``doing``.

    :raises AzurePermissionError: when ``exc`` is a 403; otherwise nothing happens.
    """
    if exc.status_code != 403:
        return
    code = exc.error.code if exc.error is not None and exc.error.code else "Forbidden"
    raise AzurePermissionError(
        role, scope, f"the signed-in identity may not {doing} (403 {code}); ask for the '{role}' role on {scope}"
    ) from None


def translate(exc: SdkError, doing: str) -> AzinferError:
    """The azinfer error for an SDK error raised while ``doing`` something (a verb phrase), in one line."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    if isinstance(exc, ClientAuthenticationError):
        return CredentialError(f"Azure did not accept the credential while trying to {doing} "
                               f"({_first_line(exc.message or type(exc).__name__)}); {SIGN_IN_HELP}")
    if isinstance(exc, HttpResponseError):
        answer = " ".join(str(part) for part in (exc.status_code, exc.reason) if part)
        if exc.error is not None and exc.error.code:
            detail = f"{exc.error.code}: {_first_line(exc.error.message or '')}".rstrip(": ")
        else:
            detail = _first_line(exc.message or "")
        return AzureError(f"cannot {doing}: Azure answered {answer or 'an error'}" + (f" ({detail})" if detail else ""))
    detail = _first_line(exc.message or exc)
    return AzureError(f"cannot {doing}: no answer from Azure ({type(exc).__name__}" + (f": {detail})" if detail else ")"))


@contextmanager
def translated(doing: str, *, role: str | None = None, scope: str | None = None) -> Iterator[None]:
    """Run the block; an SDK error it raises becomes azinfer's (see :func:`translate`).

    With ``role`` and ``scope``, a 403 becomes an :class:`AzurePermissionError` naming them.
    """
    from azure.core.exceptions import AzureError as SdkError
    from azure.core.exceptions import HttpResponseError

    try:
        yield
    except SdkError as exc:
        if role is not None and scope is not None and isinstance(exc, HttpResponseError):
            raise_if_forbidden(exc, role=role, scope=scope, doing=doing)
        raise translate(exc, doing) from None


def translated_iterator(items: Iterator[T], doing: str) -> Iterator[T]:
    """``items``, with any SDK error raised while iterating translated (see :func:`translate`)."""
    with translated(doing):
        yield from items
