"""Pure helpers with no Dagster imports, testable on their own."""
