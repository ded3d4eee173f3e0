"""The Python client: stream any video source through a realtime session, get frames back.

async with RealtimeClient(base_url, api_key) as client:
    session = await client.connect("in.mp4", model="lucy_2_rt", prompt="anime", output="o.mp4")
    async for frame in session.frames():
        ...
    await session.set_prompt("watercolor")
    summary = await session.close()
"""

from framewire.client.catalog import ModelInfo
from framewire.client.control import ProblemError
from framewire.client.events import (
    ErrorEvent,
    GenerationEnded,
    GenerationStarted,
    GenerationTick,
    IceCandidate,
    IceRestart,
    ServerEvent,
)
from framewire.client.session import RealtimeClient, Session, Summary
from framewire.client.sinks import VideoFileSink
from framewire.client.stats import ClientStats

__all__ = [
    "ClientStats",
    "ErrorEvent",
    "GenerationEnded",
    "GenerationStarted",
    "GenerationTick",
    "IceCandidate",
    "IceRestart",
    "ModelInfo",
    "ProblemError",
    "RealtimeClient",
    "ServerEvent",
    "Session",
    "Summary",
    "VideoFileSink",
]
