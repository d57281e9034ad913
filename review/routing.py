"""The review router ``jobs`` calls when a model finishes (registered in ``ReviewConfig.ready``).

It applies the authority class's default control, with the admin's ``ReviewPolicy`` overrides
over the job type's declaration:

- read_only: no review, unless the input is marked sensitive (and the policy reviews that);
- draft: always reviewed before release;
- low_risk_write: a stable per-job coin flip at the sample rate; the rest complete as not sampled;
- external_effect: always reviewed, then approved by a permitted role before the action runs.
"""

from jobs.hooks import is_sampled
from jobs.job_types import AuthorityClass
from jobs.models import ReviewState

from .selectors import policy_for


def review_router(job):
    """The job's review state. The policy is read only where it decides something: a pump
    finishing a batch of plain read-only jobs reads none."""
    if job.authority_class == AuthorityClass.READ_ONLY:
        if job.is_sensitive and policy_for(job.job_type).review_sensitive_input:
            return ReviewState.PENDING
        return ReviewState.NOT_REQUIRED
    if job.authority_class == AuthorityClass.LOW_RISK_WRITE:
        sampled = is_sampled(job, policy_for(job.job_type).sample_rate)
        return ReviewState.PENDING if sampled else ReviewState.NOT_SAMPLED
    return ReviewState.PENDING
