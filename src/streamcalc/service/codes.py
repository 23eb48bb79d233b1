"""EnOS Stream Processing API result codes (one table; see shared/reference/enos-api.md §6)."""

OK = 0
CONFIG_INVALID = 61100  # The Stream configuration JSON is invalid.
MISSING_PARAM = 61102  # Missing param xx
TOO_MANY_POINTS = 61105  # Too many points
WRONG_PIPELINE_OR_ORG = 61106  # Wrong pipelineId or OU has no privilege
UNSUPPORTED_STAGE_TYPE = 61107  # Not supported Stage Type
PIPELINE_NOT_FOUND = 61108  # Stream processing pipeline does not exist.
SAVE_FAILED = 61112  # Failed to save the stream configuration.
PIPELINE_BUSY = 61121  # Another user ... is starting a stream processing job (ours: any lifecycle action)
STOP_FAILED = 61122  # Failed to stop the stream processing pipeline.
STATUS_CHANGE_DENIED = 61152  # Status ... cannot be changed from [XX] to Paused / Stopped.
CANNOT_START = 61165  # Stream processing job with status [XX] cannot be started.
RESET_FAILED = 61168  # Failed to reset the offset.
RELEASE_DENIED = 61169  # ... cannot be released because it is not stopped or paused.
STAGE_STATE_OTHER = 61199  # other stage-state errors
INVALID_ARGUMENT = 99400  # Invalid Argument
UNAUTHORIZED = 401  # invalid authentication credentials (gateway-level in EnOS)
UNAVAILABLE = 503  # Service unavailable (gateway-level in EnOS): a backend (log, state, catalog) failed
INTERNAL = 99000  # Internal Server Error.
