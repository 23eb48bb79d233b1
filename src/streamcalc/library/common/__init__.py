"""The library's shared vocabulary: what operators and the pipeline package say alike.

Point references and the rule rows built on them (`points`, `point_rules`), the record's fields
and paths into it (`record_paths`), the rules for numbers and equality (`values`), intervals,
durations, the attr keys operators write (`attrs`), topic names and the energy vocabulary.
Nothing here is an operator, and nothing here imports one.
"""
