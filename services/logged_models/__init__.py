"""MLflow 3 logged models: the commands (`service`) and their pure decisions (`decide`)."""
