"""The worker process: Faust's agent and timers around the batch runner, and how it starts.

``agents`` hands each batch Faust takes to :class:`stream.processing.runner.BatchRunner` and
sends what it made; ``timers`` runs the expiry ticks, Markov refresh, analytics snapshot and
garbage collection; ``run`` builds the pipeline and runs it until stopped.
"""
