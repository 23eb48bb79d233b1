"""The service: the FastAPI app of the EnOS Stream Processing API v2.x, its auth and routes,
and for operators the web console (`console/`, static files) and /metrics (`activity`, `metrics`)."""
