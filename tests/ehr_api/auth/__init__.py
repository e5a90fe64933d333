"""Tests of identity and access: tokens, API keys, principals, RBAC."""
