"""Research analysis: what a team tried (idea families, and more to come: diversity, complexity, progress)."""
