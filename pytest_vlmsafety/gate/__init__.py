"""What decides a run: calibration rates and their intervals, the item gate, completeness, the
baseline comparison, the audit's corrected rates, the judge substitutions, and the results
document built from them (`evaluation.py`)."""
