"""docker-socket-operator: a filtering Docker Engine API proxy and its Kubernetes operator."""

__version__ = "0.1.0"
