"""A fake OpenAI Responses API for Steward's tests and benchmarks (no Django here).

Placeholder docstring; see README section below.
"""
