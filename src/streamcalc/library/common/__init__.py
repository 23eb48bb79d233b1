"""The library's shared vocabulary: what operators, templates and the pipeline say alike.

`points` (`{modelId}::{pointId}` references) and `point_rules` (the input -> output rule rows
and their memoised matching), `record_paths` (the record's fields and paths into it),
`values` (what a number is, equality, ordering), `intervals`, `durations`, `attrs` (the key
each operator writes under attr), `topics` and `energy` (meter scale and slope, power
integration). Nothing here is an operator or imports one.
"""
