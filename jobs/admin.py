"""Django admin for auditing jobs. Status is never edited here: actions call the services."""

from django.contrib import admin, messages
from django.utils.timezone import localtime

from . import services
from .errors import JobError
from .models import Artifact, Attempt, Job, JobEvent, ToolCall


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = [
        "number",
        "state",
        "provider_status",
        "provider_response_id",
        "input_tokens",
        "output_tokens",
        "cost",
        "error_kind",
        "error_code",
        "is_stale",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields


class ArtifactInline(ReadOnlyInline):
    model = Artifact
    fields = ["kind", "version", "text", "created_by", "is_stale", "note", "created_at"]
    readonly_fields = fields


class ToolCallInline(ReadOnlyInline):
    model = ToolCall
    fields = [
        "step",
        "name",
        "call_id",
        "authority_class",
        "state",
        "arguments",
        "output",
        "error",
        "tries",
        "decided_by",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields
    show_change_link = False


class EventInline(ReadOnlyInline):
    model = JobEvent
    fields = ["created_at", "kind", "actor_label", "from_status", "to_status", "message", "data"]
    readonly_fields = fields
    show_change_link = False


def _run_for_each(modeladmin, request, queryset, service, verb):
    done, refused = 0, []
    for job in queryset:
        try:
            service(job=job, actor=request.user)
            done += 1
        except JobError as error:
            refused.append(f"{job.short_id}: {error.message}")
    if done:
        modeladmin.message_user(request, f"{done} job(s) {verb}.", messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, line, messages.WARNING)


@admin.action(description="Cancel selected jobs")
def cancel_jobs(modeladmin, request, queryset):
    _run_for_each(modeladmin, request, queryset, services.cancel_job, "canceled")


@admin.action(description="Retry selected jobs")
def retry_jobs(modeladmin, request, queryset):
    _run_for_each(modeladmin, request, queryset, services.retry_job, "queued again")


@admin.action(description="Archive selected jobs")
def archive_jobs(modeladmin, request, queryset):
    _run_for_each(modeladmin, request, queryset, services.archive_job, "archived")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    # Nine columns fit a 1280 px window beside the filters (tests/browser/test_admin.py): the
    # review state shares the status column, the lane the authority class's; priority and
    # archiving are filters and on each job's page.
    list_display = [
        "short_id",
        "job_type",
        "status_and_review",
        "kind_and_lane",
        "workspace",
        "submitter",
        "attempts",
        "cost_usd",
        "created",
    ]
    list_filter = [
        "status",
        "job_type",
        "authority_class",
        "lane",
        "workspace",
        "review_state",
        "failure_kind",
        "is_archived",
        "priority",
    ]
    search_fields = ["id", "input_summary", "submitter__username", "idempotency_key"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace", "submitter"]
    actions = [cancel_jobs, retry_jobs, archive_jobs]

    class Media:
        css = {"all": ["css/admin.css"]}

    inlines = [AttemptInline, ToolCallInline, ArtifactInline, EventInline]
    readonly_fields = [f.name for f in Job._meta.fields]

    @admin.display(description="status", ordering="status")
    def status_and_review(self, job):
        review = job.get_review_state_display() if job.review_state else ""
        status = job.get_status_display()
        return f"{status} · {review}" if review and review != status else status

    @admin.display(description="authority · lane", ordering="authority_class")
    def kind_and_lane(self, job):
        return f"{job.get_authority_class_display()} · {job.get_lane_display()}"

    @admin.display(description="attempts", ordering="attempt_count")
    def attempts(self, job):
        return job.attempt_count

    @admin.display(description="cost (USD)", ordering="cost")
    def cost_usd(self, job):
        return f"{job.cost:.4f}" if job.cost is not None else "—"

    @admin.display(description="created", ordering="created_at")
    def created(self, job):
        return localtime(job.created_at).strftime("%b %d, %H:%M")

    def has_add_permission(self, request):
        return False  # jobs are submitted through the service, never typed in here

    def has_change_permission(self, request, obj=None):
        # Read-only audit page (no Save buttons); the list actions still go through services.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = [
        "job",
        "number",
        "state",
        "provider_status",
        "cost",
        "error_kind",
        "started_at",
    ]
    list_filter = ["state", "provider_status", "error_kind", "is_stale"]
    search_fields = ["job__id", "provider_response_id", "request_id"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in Attempt._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["job", "kind", "version", "created_by", "is_stale", "created_at"]
    list_filter = ["kind", "is_stale"]
    search_fields = ["job__id", "text"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Artifact._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(JobEvent)
class JobEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "job", "kind", "actor_label", "from_status", "to_status"]
    list_filter = ["kind", "from_status", "to_status"]
    search_fields = ["job__id", "actor_label", "message"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in JobEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
