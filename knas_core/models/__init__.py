"""Networks built from architecture descriptions."""
