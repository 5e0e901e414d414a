"""The job monitor: /admin/jobs (administrators only) and `crm status`, with retry of failed jobs."""
from __future__ import annotations

import pytest


@pytest.fixture()
def failed_job(ctx, run_worker):
    """A job that fails in a real worker (its function cannot be imported), alone in this run's
    queues: earlier tests of the run (a worker killed mid-job, a failed transcription) may have left
    jobs and registry entries under the run's queue prefix, which `crm status` would rightly list."""
    from crm import jobs

    conn = jobs.redis_connection(ctx)
    prefix = ctx.config["CRM_QUEUE_PREFIX"]
    for pattern in (f"rq:queue:{prefix}*", f"rq:*:{prefix}*"):
        keys = list(conn.scan_iter(pattern))
        if keys:
            conn.delete(*keys)
    # the id under the run's prefix too: the job's key is rq:job:<id>, which concurrent runs on one Redis share
    job = jobs.queue("default").enqueue("crm.no_such_module.job", 1, job_id=f"{prefix}monitor-broken")
    run_worker()
    assert job.get_status(refresh=True) == "failed"
    yield job
    job.delete()


def test_only_admins_see_the_monitor(ctx, client, make_user, login):
    assert client.get("/admin/jobs").status_code == 302  # to the login page
    login(make_user("operator"))
    assert client.get("/admin/jobs").status_code == 403
    client.post("/logout")
    login(make_user("dpo"))
    assert client.get("/admin/jobs").status_code == 403


def test_the_monitor_shows_queues_workers_periodic_and_failed_jobs(ctx, client, make_user, login, failed_job):
    from crm import schedule
    from crm.worker import make_worker

    worker = make_worker(ctx)
    worker.register_birth()
    worker.heartbeat()
    schedule.plant(only=["audit-checkpoint"])
    try:
        login(make_user("admin"))
        page = client.get("/admin/jobs")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "Фоновые задания" in html and "расшифровка" in html and "Обработчики заданий" in html
        assert worker.name in html and "нет сигнала" not in html
        assert "audit-checkpoint" in html and "запланировано" in html and "qa-sampling" in html
        assert failed_job.id in html and "crm.no_such_module.job" in html and "Повторить все" in html
        # the exception's class only: a failed job's message may quote personal data (a phone, a name)
        assert "ValueError" in html and "Invalid attribute name" not in html
    finally:
        worker.register_death()
        schedule.unplant()


def test_a_failed_job_is_retried_from_the_page(ctx, client, make_user, login, failed_job):
    login(make_user("admin"))
    resp = client.post(f"/admin/jobs/{failed_job.id}/retry")
    assert resp.status_code == 302
    assert failed_job.get_status(refresh=True) == "queued"
    assert "снова поставлено в очередь" in client.get("/admin/jobs").get_data(as_text=True)
    resp = client.post("/admin/jobs/no-such-job/retry", follow_redirects=True)
    assert "нет среди заданий с ошибкой" in resp.get_data(as_text=True)


def test_the_monitor_follows_the_language(ctx, client, make_user, login, failed_job):
    """The job monitor's own text goes through gettext: in English no Russian is left (job ids,
    function names and errors are data and have none), commands keep their markup; Russian by default."""
    import re

    login(make_user("admin"))
    html = client.get("/admin/jobs?lang=en").get_data(as_text=True)
    assert "Background jobs" in html and "Periodic jobs" in html and "Retry all" in html and "general" in html
    assert "<code>crm status</code>" in html and "&lt;code&gt;" not in html
    assert not re.search(r"[А-Яа-яЁё]", re.sub(r"Тест \w+", "", html)), \
        [line for line in html.splitlines() if re.search(r"[А-Яа-яЁё]", line)][:5]
    resp = client.post(f"/admin/jobs/{failed_job.id}/retry", follow_redirects=True)
    assert f"Job {failed_job.id} is queued again." in resp.get_data(as_text=True)
    html = client.get("/admin/jobs?lang=ru").get_data(as_text=True)
    assert "Периодические задания" in html and "<code>crm worker</code>" in html


def test_crm_status_lists_and_retries(ctx, failed_job):
    from crm.worker import status_cmd

    runner = ctx.test_cli_runner()
    out = runner.invoke(status_cmd, [])
    assert out.exit_code == 0, out.output
    assert "queues:" in out.output and "transcription:" in out.output and "workers:" in out.output
    assert "periodic jobs:" in out.output and "reconcile-calls every 300 s" in out.output
    assert f"{failed_job.id} crm.no_such_module.job on default" in out.output
    out = runner.invoke(status_cmd, ["--retry", "no-such-job"])
    assert out.exit_code == 1 and "no failed job no-such-job" in out.output
    out = runner.invoke(status_cmd, ["--retry", failed_job.id])
    assert out.exit_code == 0 and f"requeued {failed_job.id}" in out.output
    assert failed_job.get_status(refresh=True) == "queued"
    assert "failed: none" in out.output


def test_crm_status_retry_all(ctx, failed_job):
    from crm.worker import status_cmd

    out = ctx.test_cli_runner().invoke(status_cmd, ["--retry-all"])
    assert out.exit_code == 0 and "requeued 1 failed jobs" in out.output
    assert failed_job.get_status(refresh=True) == "queued"


def test_crm_status_shows_counts_workers_and_exception_classes_but_no_arguments_or_messages(ctx, run_worker):
    """`crm status` (issue 17): per queue its length and RQ's registries, each worker's name, state
    and current job id, and failed jobs by id, function and exception class only: a failed job's
    arguments and its error message may quote a citizen's phone number."""
    from rq import Worker

    from crm import jobs
    from crm.worker import status_cmd

    phone = "+7 912 765-43-21"
    conn = jobs.redis_connection(ctx)
    prefix = ctx.config["CRM_QUEUE_PREFIX"]
    for pattern in (f"rq:queue:{prefix}*", f"rq:*:{prefix}*"):
        keys = list(conn.scan_iter(pattern))
        if keys:
            conn.delete(*keys)
    failed = jobs.queue("default").enqueue("builtins.int", phone, job_id=f"{prefix}status-pd")  # ValueError quoting it
    run_worker()
    assert failed.get_status(refresh=True) == "failed" and phone in jobs.job_error(failed)
    queued = jobs.queue("transcription").enqueue("builtins.len", phone, job_id=f"{prefix}status-queued")
    worker = Worker([jobs.queue("default")], connection=conn, name=f"{prefix}status-worker")
    worker.register_birth()
    worker.set_state("busy")
    worker.set_current_job_id(queued.id)
    try:
        out = ctx.test_cli_runner().invoke(status_cmd, [])
    finally:
        worker.register_death()
        failed.delete()
        queued.delete()
    assert out.exit_code == 0, out.output
    assert "  transcription: 1 queued, 0 started, 0 scheduled, 0 deferred, 0 failed" in out.output
    assert "  default: 0 queued, 0 started, 0 scheduled, 0 deferred, 1 failed" in out.output
    assert f"  {prefix}status-worker (busy; default): " in out.output
    assert f"current job {queued.id}" in out.output
    assert f"  {failed.id} builtins.int on default at " in out.output and out.output.rstrip().endswith(
        "retry: crm status --retry JOB_ID | --retry-all")
    assert ": ValueError\n" in out.output
    assert "765" not in out.output and "invalid literal" not in out.output  # no argument, no message


def test_error_class_keeps_the_class_only():
    from crm.jobs import error_class

    assert error_class("ValueError: invalid literal for int() with base 10: '+7 912'") == "ValueError"
    assert error_class("rq.timeouts.JobTimeoutException: Task exceeded maximum timeout value (180 seconds)") \
        == "JobTimeoutException"
    assert error_class("KeyboardInterrupt") == "KeyboardInterrupt"
    assert error_class("+7 912 765-43-21 is not a number") == "?"
    assert error_class(None) is None
