"""The reference cloud side: ingest, fleet CA and provisioning, HQ reporting."""
