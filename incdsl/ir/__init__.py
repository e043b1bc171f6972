"""The graph IR (one node per layer) and the window arithmetic every pass and backend shares."""
