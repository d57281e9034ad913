from .selectors import REVIEW_ROLES, roles_by_workspace


def workspace_roles(request):
    """Lets the header show the review console and admin links only to those who may use them."""
    roles = roles_by_workspace(getattr(request, "user", None))
    return {
        "user_can_review": any(role in REVIEW_ROLES for role in roles.values()),
        "user_is_workspace_admin": "admin" in roles.values(),
    }
