"""Tests of the shared Proxmox client (pvemcp.core.pve)."""
