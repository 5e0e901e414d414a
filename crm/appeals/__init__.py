"""Appeals: categories, topics, lifecycle, SLA clocks, repeats."""
