"""One module per assignment: `grader.checks.<id>` defines `CHECKS`, a `grader.spec.CheckSet`."""
