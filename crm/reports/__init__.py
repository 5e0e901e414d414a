"""Reports: KPI queries over appeals, calls and evaluations."""
