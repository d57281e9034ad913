"""The refund ledger belongs to the demo app now; its table stays where it is."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobs", "0010_attempt_unrecorded_create")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="RefundLedgerEntry")],
            database_operations=[],
        )
    ]
