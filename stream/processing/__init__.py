"""The stream's processing, free of Faust and Kafka: a batch of input records in, table writes
and output records out.

``runner`` drives a batch; ``records`` applies one record to its customer; ``customer_state``
rebuilds a customer's journeys with the batch engine's rules; ``customer_record`` owns the
customers table's values and ``aggregates`` (with ``aggregate_keys``) the aggregates table's;
``crediting`` turns journey changes into aggregate deltas and attribution records.
"""
