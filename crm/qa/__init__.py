"""Quality assurance: scorecards, evaluations."""
