"""What a run writes: the typed results document and its schema, the audit file, the terminal
tables and the HTML report (also inside pytest-html)."""
