"""The questions users ask, in one call: crossovers, speculation, comparisons and reports."""
