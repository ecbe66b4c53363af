"""Device protocols, real drivers, wire-level simulators and discovery (no fiscal logic)."""
