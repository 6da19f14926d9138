"""Shared async Proxmox client: auth, TLS, errors, retries, tasks.

One module per job; import from the module you need (importing this package stays cheap):

* ``config``  — :class:`ClientConfig` (validated, secret-redacting) and ``ConfigError``.
* ``errors``  — :class:`PveError`, the one exception type, with ``kind`` and an actionable ``hint``.
* ``tls``     — SSL contexts, certificate pinning before any request byte, the httpx2 transport.
* ``auth``    — API token header; ticket login with single-flight renewal and CSRF.
* ``paths``   — spec path templates filled with validated, percent-encoded segments.
* ``client``  — :class:`PveClient`: ``get/post/put/delete/request``, retries, timeouts, concurrency.
* ``upid``    — :class:`Upid` and ``parse_upid`` (PVE's exact regex).
* ``tasks``   — ``wait_task``: poll with backoff, progress from the log, ``TaskResult``.
* ``resolve`` — vmid → :class:`GuestRef` from ``/cluster/resources``, briefly cached.
"""
