"""Tests of the embedded Proxmox VE simulator (real HTTPS over loopback)."""
