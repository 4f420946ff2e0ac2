"""The jobs (one package each) and the shared machinery that runs them: the registry, run-all, worker, ledger."""
