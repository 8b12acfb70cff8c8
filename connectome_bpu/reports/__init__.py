"""Markdown validation reports: every PASS/FAIL line is the outcome of a computed check."""
