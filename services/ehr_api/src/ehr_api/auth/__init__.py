"""Identity and access: principals, role assignments, API keys."""
