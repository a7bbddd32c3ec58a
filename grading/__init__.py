"""The leaderboard's policy: scoring sample sets, provenance, integrity checks, ranking, grading hand-ins."""
