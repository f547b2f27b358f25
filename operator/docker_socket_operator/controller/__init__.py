"""The Kubernetes side: render (pure manifests), status (pure), and the kopf operator."""
