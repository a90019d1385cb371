"""The embedded Kafka broker: fetch its jars from Maven Central, start, stop and reap it.

``launcher`` is what the command line, the tests and the demo call; ``jars`` fetches and caches
Apache Kafka; ``procs`` finds, owns and stops the JVM processes.
"""
