"""The four demo job types, one per authority class, declared with the public registry."""

from datetime import timedelta
from decimal import Decimal

from jobs.job_types import AuthorityClass, InputField, JobType, Lane, register

from .models import RefundLedgerEntry


def refund_summary(job_input):
    return (
        f"Refund ${job_input['amount']} to {job_input['customer_email']} for order "
        f"{job_input['order_reference']}."
    )


def issue_refund(*, job, idempotency_key):
    """The refund's external effect: one row in the local ledger, keyed so it can't repeat."""
    entry, _ = RefundLedgerEntry.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "job": job,
            "order_reference": job.input["order_reference"],
            "amount": Decimal(job.input["amount"]),
            "customer_email": job.input["customer_email"],
        },
    )
    return {"ledger_entry": entry.pk, "amount": str(entry.amount)}


SUMMARIZE = register(
    JobType(
        name="summarize_document",
        title="Summarize a document",
        description="Paste a document and get a short summary with its key points.",
        fields=(
            InputField("title", "Document title", max_length=200),
            InputField(
                "document",
                "Document text",
                kind="textarea",
                max_length=50_000,
                help_text="Plain text or markdown, up to 50,000 characters.",
            ),
            InputField(
                "sensitive",
                "Contains sensitive data",
                kind="boolean",
                required=False,
                help_text="Sensitive documents are checked by a reviewer before you see them.",
            ),
        ),
        instructions=(
            "Summarize the document titled '{title}' in five bullet points for a busy reader.\n\n"
            "{document}"
        ),
        lane=Lane.BACKGROUND,
        authority_class=AuthorityClass.READ_ONLY,
        deadline=timedelta(minutes=30),
        summary_field="title",
        sensitive_field="sensitive",
    )
)

SUPPORT_REPLY = register(
    JobType(
        name="draft_support_reply",
        title="Draft a support reply",
        description=(
            "Draft a reply to a customer's message; a reviewer checks it before it goes out."
        ),
        fields=(
            InputField("customer_name", "Customer name", max_length=120),
            InputField("tone", "Tone", kind="choice", choices=("friendly", "formal", "apologetic")),
            InputField("message", "Customer message", kind="textarea", max_length=10_000),
        ),
        instructions=("Write a {tone} support reply to {customer_name}, who wrote:\n\n{message}"),
        lane=Lane.STREAM,
        authority_class=AuthorityClass.DRAFT,
        deadline=timedelta(hours=2),
        review_sla=timedelta(hours=1),
        summary_field="customer_name",
    )
)

TAG_TICKET = register(
    JobType(
        name="tag_ticket",
        title="Tag a ticket",
        description="Suggest tags for a support ticket; a sample is checked by a reviewer.",
        fields=(
            InputField("subject", "Ticket subject", max_length=200),
            InputField("body", "Ticket text", kind="textarea", max_length=10_000),
        ),
        instructions="Suggest up to five short tags for this ticket.\n\n{subject}\n\n{body}",
        lane=Lane.SYNC,
        authority_class=AuthorityClass.LOW_RISK_WRITE,
        deadline=timedelta(minutes=20),
        review_sample_rate=0.2,
        summary_field="subject",
    )
)

REFUND = register(
    JobType(
        name="issue_refund",
        title="Issue a refund",
        description=(
            "Prepare a refund with a note to the customer. Nothing is refunded until an admin "
            "approves it; then the refund is written to the ledger exactly once."
        ),
        fields=(
            InputField("order_reference", "Order reference", max_length=40),
            InputField("customer_email", "Customer email", kind="email", max_length=254),
            InputField(
                "amount",
                "Amount (USD)",
                kind="decimal",
                min_value=Decimal("0.01"),
                max_value=Decimal("5000"),
            ),
            InputField("reason", "Reason", kind="textarea", max_length=2_000),
        ),
        instructions=(
            "Write a short note to {customer_email} confirming a refund of ${amount} for order "
            "{order_reference}. Reason given: {reason}"
        ),
        lane=Lane.BACKGROUND,
        authority_class=AuthorityClass.EXTERNAL_EFFECT,
        deadline=timedelta(hours=1),
        approver_role="admin",
        summary_field="order_reference",
        action=issue_refund,
        effect_summary=refund_summary,
    )
)
