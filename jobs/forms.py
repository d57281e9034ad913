"""A Django form built from a job type's declared input fields."""

from django import forms

from .job_types import JobType

WIDGETS = {
    "textarea": lambda f: forms.CharField(widget=forms.Textarea(attrs={"rows": 8})),
    "email": lambda f: forms.CharField(widget=forms.EmailInput()),
    "decimal": lambda f: forms.CharField(widget=forms.TextInput(attrs={"inputmode": "decimal"})),
    "choice": lambda f: forms.ChoiceField(choices=[("", "Choose…")] + [(c, c) for c in f.choices]),
    "boolean": lambda f: forms.BooleanField(),
    "text": lambda f: forms.CharField(),
}


class JobInputForm(forms.Form):
    """Renders the fields; validation itself is the job type's (the same rules as the API)."""

    submit_token = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, job_type: JobType, **kwargs):
        super().__init__(*args, **kwargs)
        self.job_type = job_type
        for spec in job_type.fields:
            field = WIDGETS.get(spec.kind, WIDGETS["text"])(spec)
            field.label = spec.label
            field.help_text = spec.help_text
            field.required = spec.required and spec.kind != "boolean"
            if spec.max_length and hasattr(field, "max_length"):
                field.widget.attrs["maxlength"] = spec.max_length
            self.fields[spec.name] = field

    def clean(self):
        raw = {spec.name: self.data.get(spec.name) for spec in self.job_type.fields}
        cleaned, errors = self.job_type.clean_input(raw)
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
        self.job_input = cleaned
        return self.cleaned_data
