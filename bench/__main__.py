"""`make bench`: the core runtime, then the API."""

from bench import api, core

core.main()
api.main()
