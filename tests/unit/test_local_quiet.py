"""make run's terminal: the app's routine lines go to the stack's log, so the banner stays the last thing
printed; warnings and errors still reach the terminal."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from local_processes import quiet_to_log  # noqa: E402


def test_routine_lines_go_to_the_log_and_warnings_still_show(tmp_path: Path) -> None:
    terminal = io.StringIO()
    logger = logging.getLogger("leadloop-quiet-test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler(terminal))
    log_file = tmp_path / "logs" / "runner.log"

    quiet_to_log(logger, log_file)
    logger.info('nurture sweep: {"due": 1}')
    logger.warning("a webhook failed")
    for handler in logger.handlers:
        handler.flush()

    assert terminal.getvalue() == "a webhook failed\n"
    written = log_file.read_text()
    assert "nurture sweep" in written and "a webhook failed" in written
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
