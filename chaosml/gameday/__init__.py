"""Game-days: a suite of experiments run in order, one report with a resilience score, and schedules (public API)."""

from chaosml.gameday.loader import load_gameday, load_gameday_text
from chaosml.gameday.model import Blackout, GameDay, GameDayExperiment, Schedule
from chaosml.gameday.result import GameDayResult
from chaosml.gameday.run import resilience_score, run_gameday
from chaosml.gameday.schedule import (
    blackout_reason,
    next_fire_times,
    render_cronjob,
    run_loop,
)

__all__ = [
    "Blackout",
    "GameDay",
    "GameDayExperiment",
    "GameDayResult",
    "Schedule",
    "blackout_reason",
    "load_gameday",
    "load_gameday_text",
    "next_fire_times",
    "render_cronjob",
    "resilience_score",
    "run_gameday",
    "run_loop",
]
