from django import forms

from .models import Topic


class EndpointForm(forms.Form):
    url = forms.URLField(
        label="Endpoint URL",
        max_length=500,
        assume_scheme="https",
        help_text="Steward POSTs signed JSON here (Standard Webhooks).",
    )
    description = forms.CharField(label="Description", max_length=200, required=False)
    topics = forms.MultipleChoiceField(
        label="Events",
        choices=Topic.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to receive every event.",
    )
