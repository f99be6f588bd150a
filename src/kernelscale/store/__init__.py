"""Attempt store."""
