"""What operators watch and tune: metrics, log format, garbage collection, the stop watchdog."""
