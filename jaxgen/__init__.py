"""jaxgen."""
