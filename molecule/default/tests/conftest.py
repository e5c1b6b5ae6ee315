"""Shared by the default scenario's tests: lines for the end-of-session summary (molecule verify
runs pytest without -s, so a print from a fixture would be captured)."""
import pytest

_SUMMARY = []


@pytest.fixture(scope="session")
def session_summary():
    """Call it with a line to print in pytest's terminal summary."""
    return _SUMMARY.append


def pytest_terminal_summary(terminalreporter):
    for line in _SUMMARY:
        terminalreporter.write_line(line)
