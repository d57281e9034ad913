"""Benchmarks: scripts that print figures (see RESULTS.md). Not part of the app."""
