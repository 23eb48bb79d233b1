"""`make bench`: the core runtime, each stateful operator, then the API."""

from bench import api, core, operators

core.main()
operators.main()
api.main()
