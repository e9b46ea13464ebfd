"""Table schemas (declared once), row rules and the Great Expectations suites built from them."""
