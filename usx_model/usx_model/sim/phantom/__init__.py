"""Procedural lumbar-spine phantom, VerSe loader, mesh I/O and realism checks."""
