from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self):
        # jobs never imports review: review plugs its admin-editable policies into jobs' rule.
        from jobs import hooks

        from .selectors import policy_for

        hooks.set_review_policy_source(policy_for)
