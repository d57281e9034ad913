from django.contrib import admin

from .models import OpsAction


@admin.register(OpsAction)
class OpsActionAdmin(admin.ModelAdmin):
    """Read-only: the log is written by the ops controls, never edited."""

    list_display = ["created_at", "workspace", "actor", "kind", "message"]
    list_filter = ["kind", "workspace"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
