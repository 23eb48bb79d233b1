"""Record tests, written as data, never as evaluated code: the filter expression language
(`syntax` parses and checks it, `evaluation` compiles it into closures over a record) and
`conditions`, the comparisons rules and stage preconditions use. Both decide by the value
rules of `common.values`.
"""
