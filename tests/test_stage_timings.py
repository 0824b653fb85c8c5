"""Stage timings account for the time a decision took, the first request of a fresh process included.

A fresh process is the hard case: the crisis warm-up thread competes for the interpreter, so a
model stage timed inside the model's own thread misses the time the post waited to get it back.
"""

from __future__ import annotations

import time

import pytest

from moderation_service.bootstrap import build_pipeline
from moderation_service.config import ModelSettings, PipelineSettings, Settings
from moderation_service.core.pipeline import Post

pytestmark = pytest.mark.model


def test_stages_add_up_to_the_wall_time_from_the_first_request() -> None:
    settings = Settings(models=ModelSettings(classifiers=["embedded"]), pipeline=PipelineSettings(classifier_timeout_s=None))
    pipeline = build_pipeline(settings)  # the crisis grammars warm up in the background, as in a fresh API process
    try:
        for text in ("My knees are sore after physio today", "Has anyone tried hydrotherapy?", "Thanks all, feeling better"):
            started = time.perf_counter()
            decision = pipeline.moderate_batch([Post(text=text)])[0]
            wall_ms = (time.perf_counter() - started) * 1000
            timings = decision.timings_ms
            stages = {k: v for k, v in timings.items() if k != "total"}
            assert abs(sum(stages.values()) - timings["total"]) <= 0.01 * len(stages), timings
            assert wall_ms - timings["total"] <= 2.0 + 0.02 * wall_ms, (wall_ms, timings)
            assert timings["model:embedded"] >= 0.5, timings
    finally:
        pipeline.close()
