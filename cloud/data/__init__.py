"""Reference data shipped inside the cloud package (see SOURCE.md for origin and licence)."""
