"""The demo's own table: the ledger the refund job type writes its external effect to."""

from django.db import models

from jobs.models import Job


class RefundLedgerEntry(models.Model):
    """The demo refund job's external effect: a local ledger the refund writes to once."""

    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="ledger_entries")
    idempotency_key = models.CharField(max_length=120, unique=True)
    order_reference = models.CharField(max_length=40)
    customer_email = models.EmailField()
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "jobs_refundledgerentry"  # the table was created by the jobs app
        verbose_name_plural = "refund ledger entries"

    def __str__(self):
        return f"refund {self.amount} for {self.order_reference}"


class TicketNote(models.Model):
    """The demo ticket job's low-risk write: an internal note, written once per tool call."""

    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="ticket_notes")
    call_id = models.CharField(max_length=80, unique=True)
    order_reference = models.CharField(max_length=40)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"note on {self.order_reference}"


class OutboxEmail(models.Model):
    """The demo ticket job's external effect: an email to the customer, written to this local
    outbox once per approved tool call (nothing is sent anywhere)."""

    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="outbox_emails")
    call_id = models.CharField(max_length=80, unique=True)
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"email to {self.to}: {self.subject}"
