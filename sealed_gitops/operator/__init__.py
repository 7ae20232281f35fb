"""The operator face: kopf handlers, CR status and conditions, webhook receiver, metrics."""
