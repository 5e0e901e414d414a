"""Dispatch (issue 14, points 3 and 5): what happens to an appeal once it leaves the operator — the
supervisors' breach queue (a clock's 100 % warning escalates the appeal to them), the staff's in-app
notifications, and (added with later points) the hand-over suggestion, the executor's workflow and
each executor's load and lateness.

A feature above :mod:`crm.appeals` (beside :mod:`crm.qa`): it reaches appeals through
:mod:`crm.appeals.services` and reacts to their hooks (``appeal.clock_breached``,
``appeal.clock_warned``); appeals never import it."""
