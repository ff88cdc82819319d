"""Process supervision for `inflow serve` and the embedded Valkey it can start."""
