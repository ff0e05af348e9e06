"""One module per training stage: its config check and its runner."""
