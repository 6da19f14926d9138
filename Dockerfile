# pvemcp in a container: stdio by default, streamable HTTP with `--http 0.0.0.0:8765`.
#
#   docker build -t pvemcp .
#   docker run -i --rm -e PROXMOX_URL -e PROXMOX_TOKEN_ID -e PROXMOX_TOKEN_SECRET -e PROXMOX_FINGERPRINT pvemcp
#   docker run --rm -p 8765:8765 -e PROXMOX_URL -e PROXMOX_TOKEN_ID -e PROXMOX_TOKEN_SECRET \
#     -e PROXMOX_FINGERPRINT -e PVEMCP_HTTP_TOKEN -e PVEMCP_HTTP_ALLOWED_HOSTS=mcp.example.lan \
#     pvemcp --http 0.0.0.0:8765
#
# Binding 0.0.0.0 is refused without PVEMCP_HTTP_TOKEN (bearer auth); Host headers other than loopback
# need PVEMCP_HTTP_ALLOWED_HOSTS. The server runs as an unprivileged user.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md openapi.json tools.yaml ./
COPY server ./server
RUN pip install --no-cache-dir . \
    && rm -rf /build \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin pvemcp

USER pvemcp
WORKDIR /home/pvemcp
EXPOSE 8765
ENTRYPOINT ["pvemcp", "serve"]
CMD []
