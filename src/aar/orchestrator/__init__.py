"""Teams of researchers: launch (tokens, budgets, workspaces), supervise (restart, budget, stop), status.

Backends: ``local`` (worker processes here) and ``ray`` (each worker a Ray actor)."""
