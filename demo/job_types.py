"""The demo job types, one per authority class and a tool run, declared with the public registry."""

from datetime import timedelta
from decimal import Decimal

from jobs.job_types import (
    AuthorityClass,
    InputField,
    JobType,
    Lane,
    RunLimits,
    Tool,
    ToolError,
    register,
)

from .models import OutboxEmail, RefundLedgerEntry, TicketNote
from .orders import ORDERS, TRACKING


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
        submitter_sees_draft_in_review=True,
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


def lookup_order(arguments, job, *, call_id):
    """Read-only: the demo order, or an error the model can act on."""
    reference = arguments["order_reference"].strip().upper()
    order = ORDERS.get(reference)
    if order is None:
        raise ToolError(f"There is no order {reference}.")
    return order


def add_internal_note(arguments, job, *, call_id):
    """Low-risk write: one internal note per call (the call id is its key)."""
    note, _ = TicketNote.objects.get_or_create(
        call_id=call_id,
        defaults={
            "job": job,
            "order_reference": job.input["order_reference"],
            "text": arguments["note"],
        },
    )
    return {"note_id": note.pk, "saved": True}


def email_customer(arguments, job, *, call_id):
    """External effect: one email in the local outbox per approved call (its id is the key)."""
    email, _ = OutboxEmail.objects.get_or_create(
        call_id=call_id,
        defaults={
            "job": job,
            "to": arguments["customer_email"],
            "subject": arguments["subject"],
            "body": arguments["body"],
        },
    )
    return {"outbox_id": email.pk, "queued_to": email.to}


def track_parcel(arguments, job, *, call_id):
    """Read-only: what the carrier reports for the order's parcel."""
    reference = arguments["order_reference"].strip().upper()
    if reference not in TRACKING:
        raise ToolError(f"The carrier knows no parcel for order {reference}.")
    return {"order_reference": reference, "events": TRACKING[reference]}


ORDER_REFERENCE = {
    "type": "object",
    "properties": {"order_reference": {"type": "string", "description": "e.g. A-1042"}},
    "required": ["order_reference"],
    "additionalProperties": False,
}

LOOKUP_ORDER = Tool(
    name="lookup_order",
    description="Look up an order by its reference: items, status and delivery.",
    parameters=ORDER_REFERENCE,
    authority_class=AuthorityClass.READ_ONLY,
    handler=lookup_order,
    describe=lambda args: f"Look up order {args['order_reference']}",
)

TRACK_PARCEL = Tool(
    name="track_parcel",
    description="Ask the carrier where an order's parcel is: each scan with time and place.",
    parameters=ORDER_REFERENCE,
    authority_class=AuthorityClass.READ_ONLY,
    handler=track_parcel,
    describe=lambda args: f"Track the parcel of order {args['order_reference']}",
)


RESOLVE_TICKET = register(
    JobType(
        name="resolve_ticket",
        title="Resolve a support ticket",
        description=(
            "The model looks up the order, leaves an internal note and emails the customer "
            "once a reviewer approves the email; a reviewer checks its final summary too."
        ),
        fields=(
            InputField("order_reference", "Order reference", max_length=40),
            InputField("customer_email", "Customer email", kind="email", max_length=254),
            InputField("message", "Customer message", kind="textarea", max_length=10_000),
        ),
        instructions=(
            "Resolve this support ticket. Look the order up, leave an internal note for the "
            "team, email the customer, then summarise what you did.\n\n"
            "Order reference: {order_reference}\nCustomer email: {customer_email}\n"
            "Message: {message}"
        ),
        lane=Lane.BACKGROUND,
        authority_class=AuthorityClass.DRAFT,
        deadline=timedelta(hours=1),
        summary_field="order_reference",
        tools=(
            LOOKUP_ORDER,
            Tool(
                name="add_internal_note",
                description="Add an internal note to the ticket for the support team.",
                parameters={
                    "type": "object",
                    "properties": {"note": {"type": "string", "description": "The note."}},
                    "required": ["note"],
                    "additionalProperties": False,
                },
                authority_class=AuthorityClass.LOW_RISK_WRITE,
                handler=add_internal_note,
                describe=lambda args: "Add an internal note",
            ),
            Tool(
                name="email_customer",
                description="Email the customer. Sent once, after a reviewer approves it.",
                parameters={
                    "type": "object",
                    "properties": {
                        "customer_email": {"type": "string", "format": "email"},
                        "subject": {"type": "string", "maxLength": 200},
                        "body": {"type": "string", "maxLength": 5000},
                    },
                    "required": ["customer_email", "subject", "body"],
                    "additionalProperties": False,
                },
                authority_class=AuthorityClass.EXTERNAL_EFFECT,
                approver_role="reviewer",
                handler=email_customer,
                describe=lambda args: f"Email the customer at {args['customer_email']}",
            ),
        ),
        limits=RunLimits(turns=6, tool_calls=10, cost_usd="0.50"),
    )
)


ORDER_QUESTION = register(
    JobType(
        name="answer_order_question",
        title="Answer a question about an order",
        description=(
            "The model looks the order up and asks the carrier, then answers. Both tools only "
            "read, so the run needs no approval and the answer is yours at once."
        ),
        fields=(
            InputField("order_reference", "Order reference", max_length=40),
            InputField("question", "Question", kind="textarea", max_length=2_000),
        ),
        instructions=(
            "Answer this question about an order. Look the order up and track its parcel "
            "first, then answer in two or three sentences.\n\n"
            "Order reference: {order_reference}\nQuestion: {question}"
        ),
        lane=Lane.BACKGROUND,
        authority_class=AuthorityClass.READ_ONLY,
        deadline=timedelta(minutes=30),
        summary_field="order_reference",
        tools=(LOOKUP_ORDER, TRACK_PARCEL),
        limits=RunLimits(turns=4, tool_calls=6, cost_usd="0.20"),
    )
)


RESEARCH = register(
    JobType(
        name="research_question",
        title="Research a question",
        description=(
            "The model searches the web and answers with the sources it cites; each source is "
            "listed beside the words it supports."
        ),
        fields=(InputField("question", "Question", kind="textarea", max_length=2_000),),
        instructions=(
            "Research this question on the web and answer it, citing your sources.\n\n{question}"
        ),
        lane=Lane.BACKGROUND,
        authority_class=AuthorityClass.READ_ONLY,
        deadline=timedelta(hours=1),
        summary_field="question",
        hosted_tools=({"type": "web_search"},),
    )
)
