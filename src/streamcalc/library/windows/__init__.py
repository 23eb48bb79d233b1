"""The window aggregators: SimplifiedTimeWindowAggregator (`simplified`, a running sum), and
Fixed- and SlidingTimeWindowAggregator (`fixed_sliding`), which share an event-time engine
(`engine`) over pane state (`panes`) and an index of idle keys (`idle`)."""
