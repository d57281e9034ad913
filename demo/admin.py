"""The refund ledger in admin: read-only, written once by the release step."""

from django.contrib import admin

from .models import RefundLedgerEntry


@admin.register(RefundLedgerEntry)
class RefundLedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "order_reference", "amount", "customer_email", "job"]
    search_fields = ["order_reference", "customer_email"]
    readonly_fields = [f.name for f in RefundLedgerEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the ledger is written once by the release step, never by hand

    def has_delete_permission(self, request, obj=None):
        return False
