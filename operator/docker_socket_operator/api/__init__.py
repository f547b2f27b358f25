"""Pydantic models of the DockerSocketPolicy resource (source of the CRD schema)."""
