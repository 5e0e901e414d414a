"""The worker's periodic jobs are scheduled once each (fixed job ids), and each runs."""
from __future__ import annotations


def test_sampling_is_scheduled_once_and_runs(ctx):
    from rq.registry import ScheduledJobRegistry

    from crm import jobs, schedule
    from crm.qa.jobs import run_sampling

    try:
        schedule.plant(only=["qa-sampling"])
        schedule.plant(only=["qa-sampling"])
        q = jobs.queue("default")
        ids = [j for j in ScheduledJobRegistry(queue=q).get_job_ids() if j.endswith("-qa-sampling")]
        assert ids == [q.name + "-qa-sampling"]
        assert isinstance(run_sampling(), dict)
    finally:
        schedule.unplant()


def test_every_periodic_job_is_declared_in_the_schedule_and_planted_once(ctx):
    """plant() gives each entry one job with a fixed id; planting again (a restarted worker) keeps it."""
    from rq.registry import ScheduledJobRegistry

    from crm import jobs, schedule

    q = jobs.queue("default")
    try:
        first = schedule.plant()
        assert set(first) == {e.name for e in schedule.SCHEDULE} and set(first.values()) == {"planted"}
        assert set(schedule.plant().values()) == {"kept"}
        ids = ScheduledJobRegistry(queue=q).get_job_ids()
        assert sorted(ids) == sorted(e.job_id() for e in schedule.SCHEDULE)
        for entry in schedule.SCHEDULE:
            assert entry.func.job_spec.name in jobs.JOBS
            job = q.fetch_job(entry.job_id())
            assert job.repeat_intervals == [entry.interval_s()] and job.retries_left == schedule.REPEATS
    finally:
        schedule.unplant()
    assert ScheduledJobRegistry(queue=q).get_job_ids() == []


def test_a_changed_interval_is_replanted(ctx, monkeypatch):
    from crm import jobs, schedule

    try:
        schedule.plant(only=["reconcile-calls"])
        monkeypatch.setitem(ctx.config, "CRM_RECONCILE_EVERY_S", 42)
        assert schedule.plant(only=["reconcile-calls"]) == {"reconcile-calls": "planted"}
        job = jobs.queue("default").fetch_job(schedule.SCHEDULE[0].job_id())
        assert job.repeat_intervals == [42]
    finally:
        schedule.unplant()


def test_a_periodic_job_runs_in_a_real_worker_and_is_scheduled_again(ctx, monkeypatch):
    """RQ's scheduler (in the worker) enqueues the due job, the worker runs it, and RQ's Repeat puts
    it back in the schedule under the same id; a failing run is scheduled again by RQ's Retry, its
    error kept in the job's meta."""
    import time

    from rq.registry import ScheduledJobRegistry

    from crm import jobs, schedule
    from crm.db import db
    from crm.worker import make_worker

    q = jobs.queue("default")
    entry = next(e for e in schedule.SCHEDULE if e.name == "reconcile-calls")
    monkeypatch.setitem(ctx.config, "CRM_RECONCILE_EVERY_S", 1)
    try:
        schedule.plant(only=[entry.name])
        time.sleep(1.2)
        db.session.commit()
        make_worker(ctx).work(burst=True, with_scheduler=True)
        job = q.fetch_job(entry.job_id())
        assert job.latest_result().type.name == "SUCCESSFUL"
        assert job.latest_result().return_value == {"requeued": 0, "failed": 0}
        assert job.get_status() == "scheduled" and job.repeats_left == schedule.REPEATS - 1
        assert ScheduledJobRegistry(queue=q).get_job_ids() == [entry.job_id()]
        assert schedule.plant(only=[entry.name]) == {entry.name: "kept"}

        # a failing run: RQ keeps the failure as the latest result and schedules the job again
        monkeypatch.setattr("crm.calls.services.reconcile", lambda: 1 / 0)
        time.sleep(1.2)
        make_worker(ctx).work(burst=True, with_scheduler=True)
        job = q.fetch_job(entry.job_id())
        assert job.meta["last_failure"]["error"].startswith("ZeroDivisionError")
        assert job.get_status() == "scheduled" and job.retries_left == schedule.REPEATS - 1
        assert ScheduledJobRegistry(queue=q).get_job_ids() == [entry.job_id()]
    finally:
        schedule.unplant()


def test_the_worker_holds_no_transaction_while_it_works(ctx, monkeypatch):
    """The start-up checks (reconcile, checkpoint, schedule, recordings to re-key) end their
    transactions before the worker loops: on SQLite every transaction begins IMMEDIATE, so one left
    open in the worker's main process held the write lock for its whole life (`make run` then answered
    «database is locked» to every job and to /readyz)."""
    from crm import worker
    from crm.db import db

    seen = []

    class Probe:
        def work(self, **_):
            seen.append(db.session().in_transaction())

    monkeypatch.setattr(worker, "make_worker", lambda app, **_: Probe())
    # the checkpoint and the schedule are other tests' subjects: here they would leave a checkpoint file
    # and planted jobs under the run's queue prefix for the tests after this one
    monkeypatch.setattr(worker, "write_checkpoint", lambda: None)
    monkeypatch.setattr(worker.schedule, "plant", lambda: {})
    worker.run(burst=False, echo=lambda *a, **k: None)
    assert seen == [False]
