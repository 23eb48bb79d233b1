"""Source and destination stages: EDH Kafka Consumer / Producer, bound to the pipeline's log.

They have no batch function: the runtime reads the source topic and writes the destination
topic itself, so reads, writes, state and offsets can commit as one exactly-once step.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streamcalc.library.base import OperatorType
from streamcalc.library.common.topics import TopicName


class ConsumerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: TopicName
    kafkaConfig: dict[str, str] = Field(default_factory=dict)
    """Kafka client settings; `auto.offset.reset` (earliest | latest) picks where a first start reads."""

    @property
    def auto_offset_reset(self) -> Literal["earliest", "latest"]:
        return "latest" if self.kafkaConfig.get("auto.offset.reset") == "latest" else "earliest"


class ProducerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: TopicName
    kafkaConfig: dict[str, str] = Field(default_factory=dict)


EDH_KAFKA_CONSUMER = OperatorType("EDHKafkaConsumer", ConsumerConfig, None, role="source")
EDH_KAFKA_PRODUCER = OperatorType("EDHKafkaProducer", ProducerConfig, None, role="destination")
