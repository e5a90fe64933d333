"""Integration vendors and each organisation's integration credentials."""
