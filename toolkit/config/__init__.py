"""Settings (environment, .env) and recipes (YAML strategies)."""
