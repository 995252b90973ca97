"""training/stop.py: while active, SIGTERM and the first Ctrl-C request a stop instead of killing
the process, a second Ctrl-C aborts at once, and the previous handlers come back afterwards."""

import os
import signal

import pytest

from training import stop


def test_sigterm_requests_a_stop_only_while_active():
    before = signal.getsignal(signal.SIGTERM)
    with stop.signals_request_stop():
        assert stop.stop_requested(1) is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.stop_requested(2) == "SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)  # Asked twice: still one stop.
        assert stop.stop_requested(3) == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before
    with stop.signals_request_stop():  # A new run starts with no stop requested.
        assert stop.stop_requested(1) is None


def test_the_first_ctrl_c_asks_to_save_and_the_second_aborts(capsys):
    before = signal.getsignal(signal.SIGINT)
    with stop.signals_request_stop():
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.stop_requested(5) == "Ctrl-C"
        assert "saving a checkpoint after this step" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
