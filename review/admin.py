"""Admin for review: policies are edited here; claims, decisions and releases are an audit."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from jobs.job_types import AuthorityClass, all_job_types

from .models import Decision, ReleaseRecord, ReviewClaim, ReviewPolicy, ReviewPolicyChange
from .services import delete_review_policy, save_review_policy


class ReviewPolicyForm(forms.ModelForm):
    job_type = forms.ChoiceField(choices=())

    class Meta:
        model = ReviewPolicy
        fields = [
            "job_type",
            "sample_rate",
            "approver_role",
            "review_sla",
            "review_sensitive_input",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["job_type"].choices = [
            (jt.name, f"{jt.title} ({AuthorityClass(jt.authority_class).label})")
            for jt in all_job_types()
        ]


@admin.register(ReviewPolicy)
class ReviewPolicyAdmin(admin.ModelAdmin):
    form = ReviewPolicyForm
    list_display = [
        "job_type",
        "sample_rate",
        "approver_role",
        "review_sla",
        "review_sensitive_input",
        "updated_by",
        "updated_at",
    ]
    readonly_fields = ["updated_by", "updated_at"]

    def save_model(self, request, obj, form, change):
        save_review_policy(policy=obj, actor=request.user)

    def delete_model(self, request, obj):
        delete_review_policy(policy=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for policy in queryset:
            delete_review_policy(policy=policy, actor=request.user)


class AuditAdmin(admin.ModelAdmin):
    """Read-only: these rows are written by the review services only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewPolicyChange)
class ReviewPolicyChangeAdmin(AuditAdmin):
    list_display = ["changed_at", "job_type", "kind", "changed_by", "before", "after"]
    list_filter = ["kind", "job_type"]
    list_select_related = ["changed_by"]
    date_hierarchy = "changed_at"


@admin.register(ReviewClaim)
class ReviewClaimAdmin(AuditAdmin):
    list_display = ["job", "reviewer", "claimed_at", "expires_at", "renewals", "released_at", "end"]
    list_filter = ["end"]
    search_fields = ["job__id", "reviewer__username"]
    list_select_related = ["job", "reviewer"]
    date_hierarchy = "claimed_at"


@admin.register(Decision)
class DecisionAdmin(AuditAdmin):
    list_display = ["created_at", "kind", "reviewer", "job_link", "artifact_version", "short_note"]
    list_filter = ["kind", "job__job_type", "job__workspace"]
    search_fields = ["job__id", "reviewer__username", "note"]
    list_select_related = ["job", "reviewer"]
    date_hierarchy = "created_at"
    fields = [
        "job_link",
        "kind",
        "reviewer",
        "created_at",
        "note",
        "artifact_version",
        "approved_text",
    ]
    readonly_fields = fields

    @admin.display(description="job")
    def job_link(self, obj):
        return format_html('<a href="/admin/jobs/job/{}/change/">{}</a>', obj.job_id, obj.job)

    @admin.display(description="note")
    def short_note(self, obj):
        return (obj.note[:80] + "…") if len(obj.note) > 80 else obj.note

    @admin.display(description="text of the decided version")
    def approved_text(self, obj):
        if obj.artifact is None:
            return "—"
        who = obj.artifact.created_by or "the model"
        return format_html(
            "<p>Version {} by {}</p><pre style='white-space:pre-wrap'>{}</pre>",
            obj.artifact.version,
            who,
            obj.artifact.text,
        )


@admin.register(ReleaseRecord)
class ReleaseRecordAdmin(AuditAdmin):
    list_display = ["job", "state", "runs", "deliveries", "created_at", "finished_at"]
    list_filter = ["state"]
    search_fields = ["job__id", "idempotency_key"]
    list_select_related = ["job"]
    readonly_fields = [
        "job",
        "decision",
        "idempotency_key",
        "state",
        "result",
        "error",
        "runs",
        "deliveries",
        "created_at",
        "finished_at",
    ]
