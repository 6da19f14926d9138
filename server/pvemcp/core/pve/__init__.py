"""Shared async Proxmox VE client: auth, TLS, errors, retries, tasks."""
