"""Proxmox VE's dialect, shared by the core and the simulator and owned by neither.

What both sides must read the same way lives here once: the API schema (``model``), PVE's named formats
(``formats``), property strings (``propstring``), task ids (``upid``), the JSON Schema conversion and the
OpenAPI generator built on them, and where the shipped data files are (``resources``).  This package
imports nothing else of pvemcp: ``tests/test_boundaries.py`` holds it to that.
"""
