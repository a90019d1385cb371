"""The worker's HTTP API: analysts' queries, ops endpoints, and the fan-out over the group.

``views`` registers the endpoints (the HTTP server); ``queries`` answers them; ``fanout`` asks
the other workers for their shares (the HTTP client); ``shares`` is what this worker holds;
``merge_attribution`` and ``merge_analytics`` turn every partition's share into the batch
engine's answers, without I/O.
"""
