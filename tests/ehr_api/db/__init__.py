"""Data layer: engine, migrations, tenant scoping."""
