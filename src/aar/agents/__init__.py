"""Researcher agents: the protocol (budgets, trajectory, ``Researcher``), the ``evolve`` researcher, and
``run_worker`` behind ``aar worker run``."""
