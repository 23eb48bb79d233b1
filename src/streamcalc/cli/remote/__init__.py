"""Commands that drive a running service over HTTP through the SDK (`StreamcalcClient`):
`pipeline`, `state`, `produce`, `consume`. Nothing here imports the service or the runtime
(`make lint` checks it)."""
