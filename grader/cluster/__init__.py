"""Grading a class on a Dask cluster (`python -m grader grade ... --dask tcp://host:8786`).

The coordinating process (`coordinator`) does everything a local run does except probing:
it reads the submissions, draws the settings from the course's key, observes the reference,
and saves every report, autograded notebook, timestamp, gradebook row, CSV and chart. Each
worker (`worker`) keeps one run's warm sandbox slots for the whole run and grades the staged
submissions it is sent, judging them with its own copy of the test labels; only the report,
as JSON data, comes back. A worker lost in the middle of a run loses nothing: Dask gives its
submissions to another worker, and the coordinator records each submission's report once.
"""
