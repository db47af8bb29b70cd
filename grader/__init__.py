"""Autograder for the course: checks, sandboxed probing of submissions, judging, reports."""
