"""End-to-end pipelines: intra-operative spine completion and the offline phantom run."""
