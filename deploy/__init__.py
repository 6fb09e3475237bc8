"""Deployment helpers: the native cluster (`make cluster`) that mirrors docker-compose.yaml."""
