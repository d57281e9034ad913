"""Reads about who belongs where. Every job query is scoped through ``workspace_ids_for`` (a
subquery) or, on pages, ``workspace_id_list`` (the same ids, read once per request)."""

from .models import ApiToken, Membership, Role, Workspace

REVIEW_ROLES = (Role.REVIEWER, Role.ADMIN)


def workspace_ids_for(user, *, roles=None):
    """IDs of the workspaces ``user`` belongs to (with one of ``roles``, if given): a subquery."""
    if not getattr(user, "is_authenticated", False):
        return Workspace.objects.none().values("id")
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return memberships.values("workspace_id")


def memberships_of(user):
    """The user's memberships with their workspaces, read once per user object.

    ``request.user`` is loaded afresh for every request, so the header, the view and its
    selectors share this one query within a request and never see another request's roles.
    """
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_steward_memberships", None)
    if cached is None:
        cached = list(Membership.objects.filter(user=user).select_related("workspace"))
        user._steward_memberships = cached
    return cached


def workspace_id_list(user, *, roles=None):
    """``workspace_ids_for`` as a list of values (from ``memberships_of``). Page reads use it:
    with literal ids PostgreSQL walks the (workspace, …) indexes in order and stops at the
    page's LIMIT, where a subquery makes it read every job of the workspace first."""
    return [m.workspace_id for m in memberships_of(user) if roles is None or m.role in roles]


def workspaces_for(user):
    return Workspace.objects.filter(id__in=workspace_ids_for(user))


class WorkspaceChoiceError(ValueError):
    """The submission does not say a workspace the user may submit to; ``message`` says why."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def submission_workspace(workspaces, chosen=None):
    """The workspace a submission goes to, out of the submitter's ``workspaces``: the one whose
    id is ``chosen``, or their only one when they name none. The web form and the API both ask
    this. Raises ``WorkspaceChoiceError``."""
    workspaces = list(workspaces)
    if chosen in (None, ""):
        if len(workspaces) == 1:
            return workspaces[0]
        if workspaces:
            raise WorkspaceChoiceError("You belong to several workspaces; say which one.")
        raise WorkspaceChoiceError("You are not a member of any workspace yet; ask an admin.")
    for workspace in workspaces:
        if str(workspace.pk) == str(chosen):
            return workspace
    raise WorkspaceChoiceError("You are not a member of a workspace with this id.")


def role_in(user, workspace_id):
    """The user's role in a workspace, or ``None`` when they are not a member."""
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Membership.objects.filter(user=user, workspace_id=workspace_id)
        .values_list("role", flat=True)
        .first()
    )


def roles_by_workspace(user):
    """``{workspace_id: role}`` for one user, read once per request."""
    return {m.workspace_id: m.role for m in memberships_of(user)}


def api_tokens_for(user):
    """A user's API tokens, newest first (revoked ones included, for the record)."""
    return ApiToken.objects.filter(user=user)


def active_token_for_secret(secret):
    """The active token whose secret this is, with its user, or ``None``."""
    return (
        ApiToken.objects.select_related("user")
        .filter(token_hash=ApiToken.hash_secret(secret), revoked_at__isnull=True)
        .first()
    )
