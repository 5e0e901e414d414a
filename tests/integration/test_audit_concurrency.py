"""Several processes append to the access log at once; the chain stays linear and verifiable."""
from __future__ import annotations

import multiprocessing as mp

from crm.db import db
from crm.security import audit
from crm.security.models import AccessLogEntry


def _writer(config: dict, n: int, tag: str) -> None:
    from crm import create_app

    app = create_app({k: v for k, v in config.items()})
    with app.app_context():
        for i in range(n):
            audit.record("test.append", detail=f"{tag}-{i}", actor=audit.system_actor(tag))
            db.session.commit()


def test_concurrent_writers_leave_a_valid_chain(ctx, app_config):
    config = {**app_config, "SQLALCHEMY_DATABASE_URI": ctx.config["SQLALCHEMY_DATABASE_URI"]}
    spawn = mp.get_context("spawn")
    procs = [spawn.Process(target=_writer, args=(config, 40, f"w{i}")) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db.session.commit()
    count, bad, message = audit.verify()
    assert bad is None, message
    assert db.session.execute(db.select(db.func.count()).select_from(AccessLogEntry)
                              .where(AccessLogEntry.action == "test.append")).scalar() == 160
    seqs = db.session.execute(db.select(AccessLogEntry.seq).order_by(AccessLogEntry.seq)).scalars().all()
    assert seqs == list(range(1, len(seqs) + 1))
