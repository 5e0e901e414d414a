"""Jobs declare their queue, time limit, retries and TTLs once (crm.jobs.job); enqueue applies them."""
from __future__ import annotations

import pytest


def test_enqueue_applies_the_declaration(ctx):
    from crm import jobs
    from crm.calls.jobs import transcribe_call

    spec = transcribe_call.job_spec
    assert (spec.queue, spec.retries, spec.retry_intervals_s) == ("transcription", 2, (30, 120))
    job = jobs.enqueue("crm.calls.jobs.transcribe_call", "no-such-call", timeout_s=999)
    try:
        assert job.origin == jobs.queue("transcription").name
        assert (job.timeout, job.result_ttl, job.failure_ttl) == (999, spec.result_ttl_s, spec.failure_ttl_s)
        assert (job.retries_left, job.retry_intervals) == (2, [30, 120])
        assert job.args == ("no-such-call",)
    finally:
        job.delete()


def test_a_function_object_and_its_dotted_name_are_the_same_job(ctx):
    from crm import jobs
    from crm.security.rotation import index_backfill_job

    assert jobs.spec_of(index_backfill_job) is jobs.spec_of("crm.security.rotation.index_backfill_job")
    job_id = f"{ctx.config['CRM_QUEUE_PREFIX']}declared-id"  # rq:job:<id> is shared by concurrent runs
    job = jobs.enqueue(index_backfill_job, "phone", job_id=job_id)
    try:
        assert job.id == job_id and job.timeout == 6 * 3600 and job.retries_left is None
        assert job.func_name == "crm.security.rotation.index_backfill_job"
    finally:
        job.delete()


def test_an_undeclared_job_is_refused(ctx):
    from crm import jobs

    with pytest.raises(LookupError):
        jobs.enqueue("crm.calls.services.reconcile")
    with pytest.raises(ValueError):
        jobs.job(queue="nowhere")
