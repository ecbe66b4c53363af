"""The tillbox box daemon: configuration, composition root, APIs, status page and CLI."""
