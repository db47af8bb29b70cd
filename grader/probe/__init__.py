"""The probe: the untrusted side of grading.

It runs a submission's cells, then calls the assignment's observers on what they defined, and
writes plain data (JSON, tensors) for the judge. It runs inside the sandbox and must import
nothing from `solutions` (which the sandbox hides) or from `grader.expected`.
"""
