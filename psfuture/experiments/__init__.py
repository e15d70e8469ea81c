"""Research code beside the runtime: sweeps, reports, significance, resumable chunks (needs the [eval] extra)."""
