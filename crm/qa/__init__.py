"""Quality assurance: versioned scorecards, evaluations and disputes, automatic checks, sampling into review queues, calibration, dashboards."""
