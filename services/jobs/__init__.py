"""Training jobs: commands that record a job's lifecycle as `job.*` events, and the queries."""
