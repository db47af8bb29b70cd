"""Autograder for the course: checks, sandboxed probing of submissions, judging, reports."""

# Part of every grade's fingerprint (with the code itself): bump when grading changes meaning.
__version__ = "0.2.0"
