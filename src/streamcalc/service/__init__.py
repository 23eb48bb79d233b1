"""The service: the FastAPI app of the EnOS Stream Processing API v2.x, its auth and routes."""
