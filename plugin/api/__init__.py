"""The JSON API the panels (and Forge) call with context JWTs."""
