"""openapi.json access: per-operation JSON Schemas, property-string codec, generator."""
