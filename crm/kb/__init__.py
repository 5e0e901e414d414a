"""Knowledge base and call scripts (issue 15, point 4): articles, call scripts and per-building hints
by topic, edited by supervisors with every edit kept as a version; Russian full-text search that finds
word forms (PostgreSQL's ``russian`` text search configuration; on SQLite an FTS5 index fed with the
product's lemmatiser, :mod:`crm.text_ru`); the panel beside the intake form; script lines that the
automatic QA checks look for (:mod:`crm.kb.scripts`)."""
