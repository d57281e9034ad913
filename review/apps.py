from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self):
        # jobs never imports review: review plugs its admin-editable policy into jobs' hook.
        from jobs import hooks

        from .routing import review_router

        hooks.set_review_router(review_router)
