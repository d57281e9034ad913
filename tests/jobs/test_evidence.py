"""Evidence: the sources an answer cites (``url_citation`` annotations of a web search run at
the fake provider over real HTTP) are kept as an evidence artifact and shown beside the words
they support, on the submitter's page and in the review console."""

import pytest
from django.urls import reverse

from jobs import execution, services
from jobs.models import Artifact, Status
from tests.jobs.test_provider_lane import pump_until, reload
from tests.review.drafts import make_draft

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_web_search_answer_keeps_its_sources_and_the_page_lists_them(
    fake, client, workspace, submitter
):
    job = services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type="research_question",
        input={"question": "How long do trail running shoes last?"},
    )
    execution.dispatch_job(job.pk)
    pump_until(lambda: reload(job).status == Status.COMPLETED)

    evidence = reload(job).artifacts.get(kind=Artifact.Kind.EVIDENCE)
    sources = evidence.data["sources"]
    assert len(sources) == 2
    answer = reload(job).artifacts.get(kind=Artifact.Kind.TEXT).text
    for source in sources:
        assert source["url"].startswith("https://")
        assert source["supports"] == answer[source["start"] : source["end"]] != ""
    assert len(evidence.data["searches"]) == 1  # the web_search_call's query

    client.force_login(submitter)
    html = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'id="job-sources"' in html
    for source in sources:
        assert f'href="{source["url"]}" rel="noopener noreferrer nofollow"' in html


def test_the_review_console_shows_each_citation_beside_the_words_it_supports(
    client, workspace, submitter, reviewer
):
    job = make_draft(workspace=workspace, submitter=submitter)
    services.add_artifact(
        job=job,
        kind=Artifact.Kind.EVIDENCE,
        data={
            "sources": [
                {
                    "url": "https://example.com/returns",
                    "title": "Returns policy",
                    "start": 0,
                    "end": 8,
                    "supports": "Hi Dana,",
                },
                {"url": "javascript:alert(1)", "title": "Not a link", "supports": ""},
            ],
            "searches": ["returns policy"],
        },
    )
    client.force_login(reviewer)
    html = client.get(reverse("review:detail", args=[job.pk])).content.decode()
    assert "Sources the draft cites" in html
    assert '<a href="https://example.com/returns"' in html
    assert '<blockquote class="small">Hi Dana,</blockquote>' in html
    assert 'href="javascript:' not in html  # a model-given address of another scheme is text
    assert "Searched the web for: “returns policy”" in html
