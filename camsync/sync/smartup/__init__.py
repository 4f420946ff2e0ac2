"""The SmartUp pull: products, prices and orders from the SmartUp ERP into the store, change-aware, in windows,
inside the daily call budget.

- `pull`: the entry points (`sync_products`, `sync_orders`, `sync_order`, `sync_all`);
- `products`, `prices`, `orders`: one module per export;
- `run`: what a run shares (counters, failures, batches, how it ends); `result`: what it returns;
- `windows`: what a run pulls; `budget`: the daily call budgets; `source`: what it needs of the client;
- `items`, `mapping`, `fast_mapping`: raw items → keys, hashes and typed rows.

Nothing here imports another job.
"""
