"""Placeholder replaced by the scorecard generator."""
