"""Training jobs: the pure decisions on a job's lifecycle (`decide`), the commands that record it
as `job.*` events (`service`), and the queries."""
