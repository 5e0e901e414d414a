"""Administrators' pages (top layer): the background-job monitor at ``/admin/jobs``."""
