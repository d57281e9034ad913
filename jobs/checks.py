"""System checks for what the jobs app needs from its settings."""

from django.conf import settings
from django.core import checks


def webhook_secret_problem():
    """Why provider webhooks cannot be trusted with these settings, or ``None``. Only a server
    that is not in DEBUG and receives webhooks needs a secret of its own."""
    if settings.DEBUG or not settings.OPENAI_WEBHOOKS_ENABLED:
        return None
    secret = settings.OPENAI_WEBHOOK_SECRET
    if not secret:
        return "OPENAI_WEBHOOKS_ENABLED is on but OPENAI_WEBHOOK_SECRET is not set."
    if secret == settings.DEMO_OPENAI_WEBHOOK_SECRET:  # published with Steward
        return (
            "OPENAI_WEBHOOK_SECRET is the demo secret published with Steward: anyone could "
            "forge provider webhooks."
        )
    return None


@checks.register(checks.Tags.security)
def check_webhook_secret(app_configs, **kwargs):
    problem = webhook_secret_problem()
    if problem is None:
        return []
    return [
        checks.Error(
            problem,
            hint=(
                "Set OPENAI_WEBHOOK_SECRET to the signing secret OpenAI shows for your webhook "
                "endpoint, or turn OPENAI_WEBHOOKS_ENABLED off."
            ),
            id="steward.E001",
        )
    ]
