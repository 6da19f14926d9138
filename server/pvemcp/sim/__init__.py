"""The embedded Proxmox VE 9 simulator (stateful model + HTTPS app)."""
