"""The web dashboard (``aar serve``): teams, workers' transcripts, leaderboard, forum, plots; admin login."""
