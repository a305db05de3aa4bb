"""Volume paths and detach verification (issue 10): connectors, findings, the HTTP script."""
