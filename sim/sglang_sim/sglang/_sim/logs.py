"""SGLang's log lines, each with the sim marker, and the readers of the SGLANG_SIM_* knobs."""

import os
import sys
import threading
import time

SIM_MARKER = "[sglang-sim]"
LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}

_log_lock = threading.Lock()
_log_threshold = LOG_LEVELS["info"]


def log(msg, level="info"):
    if LOG_LEVELS.get(level, 20) < _log_threshold:
        return
    ts = time.strftime("%Y-%m-%d %H:%M:%S")
    # SGLang's own format is "[time] message"; the sim marker prefixes every message.
    tag = "" if level == "info" else f"{level.upper()}: "
    line = f"[{ts}] {SIM_MARKER} {tag}{msg}\n"
    with _log_lock:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _env_float(name, default):
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        log(f"ignoring {name}={raw!r}: not a number", "warning")
        return default


def _env_int(name, default):
    value = _env_float(name, None)
    return default if value is None else int(value)
