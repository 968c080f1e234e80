"""Fleet-side commands: keys, trust, signed releases, publishing and status."""
