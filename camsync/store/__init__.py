"""camsync's own store: SQLAlchemy 2.0 models, the engine, migrations and the queries the jobs need."""
