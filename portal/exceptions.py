"""The domain's refusals, shared by every feature; `portal.errors` turns them into pages."""


class DomainError(Exception):
    """A rule refused the change; the message says why, for the user."""


class NotAllowedError(DomainError):
    """The actor may not do this (403)."""


class ConflictError(DomainError):
    """The change conflicts with the current state (409)."""


class NotFoundError(DomainError):
    """No such thing in the actor's team (404, whoever else it belongs to)."""
