"""The submission workbook schema (data) and the Great Expectations suites built from it."""
