"""Drop-in instrumentation; each module imports its library only when used."""
