"""Everything that talks to Kafka: producing events, creating topics, the worker's record-batch
sends, byte codecs, key partitioning, reading skipped offsets and the consumer's positions."""
