from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        # jobs never imports notifications: it calls the listeners registered here after each
        # transaction that wrote a job event commits.
        from jobs.hooks import add_event_listener, add_view_listener

        from .listeners import on_job_events
        from .services import mark_job_read

        add_event_listener(on_job_events)
        add_view_listener(lambda user, job: mark_job_read(user=user, job=job))
