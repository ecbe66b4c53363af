"""The HQ API: multi-store reporting over the replicated journals (``tillbox cloud hq``).

``app`` builds the FastAPI application, ``reports_api`` and ``boxes_api`` its routes,
``queries`` and ``exports`` the SQL and the file formats (FEC, CSV, JSONL), ``problems`` the
problem+json errors.
"""
