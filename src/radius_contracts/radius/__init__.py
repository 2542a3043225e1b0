"""Wire layer: bytes, sockets and pyrad. Never imports db/, store/ or api/."""
