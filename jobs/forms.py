"""A Django form built from a job type's declared input fields.

Validation is the job type's own ``clean_input`` (the same rules the API applies); the form only
renders the fields accessibly and carries the one-time submit token that makes a double click or
a resubmitted form one job.
"""

import uuid

from django import forms

from accounts.selectors import WorkspaceChoiceError, submission_workspace

from .job_types import JobType
from .models import Priority

WIDGETS = {
    "textarea": lambda f: forms.CharField(widget=forms.Textarea(attrs={"rows": 8})),
    "email": lambda f: forms.CharField(widget=forms.EmailInput(attrs={"autocomplete": "email"})),
    "decimal": lambda f: forms.CharField(widget=forms.TextInput(attrs={"inputmode": "decimal"})),
    "choice": lambda f: forms.ChoiceField(choices=[("", "Choose…")] + [(c, c) for c in f.choices]),
    "boolean": lambda f: forms.BooleanField(),
    "text": lambda f: forms.CharField(),
}

PRIORITY_CHOICES = [
    (str(Priority.NORMAL.value), "Normal"),
    (str(Priority.HIGH.value), "High: start before normal jobs"),
    (str(Priority.LOW.value), "Low: whenever there is room"),
]


def new_submit_token():
    return uuid.uuid4().hex


class JobInputForm(forms.Form):
    """The job type's fields, plus priority and (for people in several workspaces) workspace."""

    submit_token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, job_type: JobType, workspaces=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.job_type = job_type
        self.workspaces = {str(ws.pk): ws for ws in workspaces}
        own = {spec.name for spec in job_type.fields}
        if len(self.workspaces) > 1 and "workspace" not in own:
            self.fields["workspace"] = forms.ChoiceField(
                label="Workspace", choices=[(pk, ws.name) for pk, ws in self.workspaces.items()]
            )
        for spec in job_type.fields:
            field = WIDGETS.get(spec.kind, WIDGETS["text"])(spec)
            field.label = spec.label
            field.help_text = spec.help_text
            field.required = spec.required and spec.kind != "boolean"
            if spec.max_length and spec.kind != "choice":
                field.widget.attrs["maxlength"] = spec.max_length
            self.fields[spec.name] = field
        if "priority" not in own:
            self.fields["priority"] = forms.ChoiceField(
                label="Priority",
                choices=PRIORITY_CHOICES,
                initial=str(Priority.NORMAL.value),
                required=False,
            )
        for name, field in self.fields.items():
            self._describe(name, field)

    def _describe(self, name, field, *, invalid=False):
        """Point the widget at its help text and error so screen readers announce them."""
        ids = []
        if field.help_text:
            ids.append(f"id_{name}_helptext")
        if invalid:
            ids.append(f"id_{name}_error")
            field.widget.attrs["aria-invalid"] = "true"
        if ids:
            field.widget.attrs["aria-describedby"] = " ".join(ids)

    def add_error(self, field, error):
        super().add_error(field, error)
        if isinstance(field, str) and field in self.fields:
            self._describe(field, self.fields[field], invalid=True)

    def clean(self):
        raw = {spec.name: self.data.get(spec.name) for spec in self.job_type.fields}
        cleaned, errors = self.job_type.clean_input(raw)
        for name, messages in errors.items():
            field = name if name in self.fields else None
            if field and field in self.errors:
                continue  # the form field already said it (e.g. "required"); say it once
            for message in messages:
                self.add_error(field, message)
        self.job_input = cleaned
        try:
            chosen = self.cleaned_data.get("workspace")
            self._workspace = submission_workspace(self.workspaces.values(), chosen)
        except WorkspaceChoiceError as error:
            self.add_error("workspace" if "workspace" in self.fields else None, error.message)
        return self.cleaned_data

    @property
    def workspace(self):
        return self._workspace

    @property
    def priority(self):
        return int(self.cleaned_data.get("priority") or Priority.NORMAL)

    @property
    def idempotency_key(self):
        token = self.cleaned_data.get("submit_token")
        return f"form:{token}" if token else None

    def refresh_token(self):
        """A new one-time token, for a form whose previous token was already used."""
        data = self.data.copy()
        data["submit_token"] = new_submit_token()
        self.data = data
