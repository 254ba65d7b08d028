"""Evaluation: generation, task metrics with intervals, the general suite (alignment tax, drift),
preference judging, few-shot transfer and trade-off curves."""
