"""The keys operators write under a record's `attr`, one per operator, so that none can take
another's: what downstream stages, conditions and the energy operators read back.
"""

from __future__ import annotations

LAST_RECORD_ATTR = "lastRecordAppender"
"""LastRecordAppender: the previous qualifying record (CumulantDecomposer and PowerIntegrator read it)."""
LAST_CHANGED_ATTR = "lastChangedRecordAppender"
"""LastChangedRecordAppender: the last record whose value changed (CumulantDecomposer reads it)."""
CUMULANT_ATTR = "deltaCalculator"
POWER_ATTR = "powerIntegrator"
OUTLIER_ATTR = "isOutlier"
OUTLIER_PARAMS_ATTR = "outlierAttr"
"""OffLimitTagger writes both: whether the value is an outlier, and the interval it was tested against."""
MERGER_ATTR = "latestRecordMerger"
BATCH_MERGER_ATTR = "crossBatch"
WINDOW_ATTR = "windowAggregator"
"""The Fixed and Sliding window aggregators' outputs: calMode, calType, windowEnd, ..."""
