from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import time

from phonestatus.logs import BackgroundLineWriter, mask_number


class TestBackgroundLineWriter:
    def test_close_writes_every_queued_line_in_order(self) -> None:
        stream = io.StringIO()
        writer = BackgroundLineWriter(stream)
        for index in range(2500):
            writer.write_line(f"line {index}")
        writer.close()
        assert stream.getvalue().splitlines() == [f"line {index}" for index in range(2500)]

    def test_lines_written_without_close(self) -> None:
        stream = io.StringIO()
        writer = BackgroundLineWriter(stream)
        writer.write_line("first")
        # The writer wakes on its own; close only stops it, after the line is out.
        for _ in range(500):
            if stream.getvalue():
                break
            time.sleep(0.01)
        assert stream.getvalue() == "first\n"
        writer.close()

    def test_serve_logging_flushes_at_exit(self) -> None:
        script = textwrap.dedent(
            """
            import structlog
            from phonestatus.logs import configure_logging
            configure_logging(json=True, cache_loggers=True, background=True)
            log = structlog.get_logger("check")
            for index in range(300):
                log.info("check_line", index=index)
            """
        )
        completed = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        lines = [json.loads(line) for line in completed.stderr.splitlines()]
        assert [line["index"] for line in lines] == list(range(300))
        assert {line["event"] for line in lines} == {"check_line"}


class TestMaskNumber:
    def test_mask_number_hides_middle_digits(self) -> None:
        assert mask_number("13800138000") == "138****8000"
