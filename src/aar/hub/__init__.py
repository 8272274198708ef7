"""The research hub: findings forum, code snapshots, worker registry and event log, outside every sandbox."""
