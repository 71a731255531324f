"""MLflow's REST API on the gateway, so an unmodified `mlflow` client (and the Java, R and
JS clients that speak the same API) works against Ledgerflow (docs/mlflow-compat.md).

Each endpoint family is a module that maps MLflow's messages onto Ledgerflow's commands,
services and views: what the `mlflow` client writes becomes the same events the native
API writes, checked against the caller the same way. `endpoints` carries the wire
(fields from the query string or the JSON body, MLflow's error shape); `messages` turns
Ledgerflow's records into MLflow's JSON."""
