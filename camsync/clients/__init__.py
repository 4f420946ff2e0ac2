"""One class per upstream API over a shared httpx setup; typed results, typed errors."""
