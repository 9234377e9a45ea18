"""Device kinds declared by tests through the registry alone (schemas.kinds plugins)."""
