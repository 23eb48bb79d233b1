"""The window aggregators. `simplified`: SimplifiedTimeWindowAggregator, a running sum per
window. `fixed_sliding`: Fixed- and SlidingTimeWindowAggregator, configs and operator, over
an event-time `engine` that keeps its state in `panes` and, under an idle timeout, an index
of idle keys (`idle`).
"""
