"""Providers' and clouds' own usage and cost reports read into BilledLine records (issue 24)."""
