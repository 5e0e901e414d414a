"""The worker's periodic jobs are scheduled once each (fixed job ids), and each runs."""
from __future__ import annotations


def test_sampling_is_scheduled_once_and_runs(ctx):
    from rq.registry import ScheduledJobRegistry

    from crm import jobs
    from crm.qa.jobs import run_sampling, schedule_sampling

    schedule_sampling()
    schedule_sampling()
    q = jobs.queue("default")
    ids = [j for j in ScheduledJobRegistry(queue=q).get_job_ids() if j.endswith("-qa-sampling")]
    assert ids == [q.name + "-qa-sampling"]
    assert isinstance(run_sampling(), dict)
