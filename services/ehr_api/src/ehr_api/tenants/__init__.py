"""Organisations (the tenants) and their administration."""
