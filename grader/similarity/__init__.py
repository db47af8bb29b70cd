"""Which submissions of a class share code: `python -m grader similarity`.

Students' solution cells are compared as Python tokens with their own names and literals
normalised (`tokens`), fingerprinted by winnowing as MOSS does (`fingerprints`), with the code
handed out in the release left out (`documents`). An inverted index from fingerprint to students
finds the pairs that share any code (`index`); only those are scored, and only the flagged ones
are taken apart into matching regions (`regions`) for the terminal table, the CSV, the
histogram (`outputs`) and the side-by-side HTML report (`report_html`). Nothing here runs
student code; submissions are read as the grader reads them (`grader.staging.stage`).

This package is imported by the command line's parser: keep this file free of imports.
"""
