"""PAY+-shaped app databases for tests: re-exported from `camsync.source.payplus_sample` so any test can use them.

`make_payplus_db(path, rows)` writes a SQLite file; `write_payplus_rows(engine, rows)` writes the same tables on
any engine (PostgreSQL included). A row is a dict with `id` and optionally `txn_id`, `amount`, `status`, `meter`,
`currency`, `topup`, `created_at` (see `write_payplus_rows`).
"""

from __future__ import annotations

from camsync.source.payplus_sample import create_sample_app_db, make_payplus_db, write_payplus_rows

__all__ = ["create_sample_app_db", "make_payplus_db", "write_payplus_rows"]
