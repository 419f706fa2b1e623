"""Serving a generator: HTTP API (FastAPI), static web site, AWS Lambda package."""
