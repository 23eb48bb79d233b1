"""Topic names as operator and template config write them: checked as the log checks them."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from streamcalc.log import check_topic_name

TopicName = Annotated[str, AfterValidator(check_topic_name)]
