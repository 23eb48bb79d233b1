"""Record tests: the filter expression language (`syntax`, then `evaluation`) and conditions
written as data (`conditions`), which rules and stage preconditions use. No user text ever
reaches Python's eval."""
