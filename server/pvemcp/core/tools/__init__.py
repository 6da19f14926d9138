"""Core tool handlers that need more than one Proxmox API call."""
