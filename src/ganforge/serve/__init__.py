"""Serving a generator: HTTP API (FastAPI), static web site, AWS Lambda package.

request_core.py holds what the HTTP API and the Lambda handler share (parameter checks, class lookup,
encodings, error messages); it needs neither torch nor FastAPI and ships inside the Lambda package.
"""
