"""Batch end-to-end benchmark: a 1,000,000-number file in, a result file out.

Generates CSV and XLSX files from real segments with duplicates and damaged
rows mixed in, then runs each through the whole pipeline (read and store,
query with the simulated network at zero latency, bill every number, write
the result file) in a fresh process, and prints wall time, CPU time and that
process's peak RSS, also as it stood at the end of the store and query phases.

    .venv/bin/python bench/batch_bench.py                  # 1M rows, SQLite
    .venv/bin/python bench/batch_bench.py --rows 100000 --database postgresql://...
    .venv/bin/python bench/batch_bench.py --skip-queries   # file handling only

``--skip-queries`` stores the job and writes the result file without querying
(every row reads NOT_QUERIED), to measure reading, storing and writing alone.
The per-account rate limit and the simulated carriers' capacity still apply;
the bench account and carriers get high limits (``--account-rate-limit``,
``--carrier-capacity``) so that no number is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Segments of the three basic carriers, from the product's segment table.
SEGMENTS = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "145", "147", "150",
    "151", "152", "153", "155", "156", "157", "158", "159", "166", "173", "176", "177",
    "178", "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199",
]  # fmt: skip
DAMAGED = [
    "1.38001E+10",
    "138001380",
    "abc",
    "13800138000.0",
    "１３８００１３８０００",
    "'13912345678",
]
DUPLICATE_RATE = 0.05
DAMAGED_RATE = 0.01


def generate_numbers(rows: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    values: list[str] = []
    for _ in range(rows):
        draw = rng.random()
        if draw < DAMAGED_RATE:
            values.append(rng.choice(DAMAGED))
        elif draw < DAMAGED_RATE + DUPLICATE_RATE and values:
            values.append(values[rng.randrange(len(values))])
        else:
            values.append(rng.choice(SEGMENTS) + f"{rng.randrange(10**8):08d}")
    return values


def write_csv(path: Path, numbers: list[str]) -> None:
    with path.open("w", encoding="utf-8") as stream:
        stream.write("客户编号,手机号码\n")
        for index, number in enumerate(numbers):
            stream.write(f"C{index},{number}\n")


def write_xlsx(path: Path, numbers: list[str]) -> None:
    from phonestatus.batch.xlsx import StreamingWorkbook

    with StreamingWorkbook(path) as workbook:
        sheet = workbook.add_sheet("Sheet1")
        sheet.append(["客户编号", "手机号码"])
        for index, number in enumerate(numbers, start=1):
            # Most numbers as numeric cells, the way Excel stores a typed number.
            sheet.append([f"C{index}", int(number) if number.isdigit() else number])


async def run_pipeline(
    source: Path, database_url: str | None, work_dir: Path, options: argparse.Namespace
) -> dict[str, object]:
    from phonestatus.accounts.crypto import SecretCipher
    from phonestatus.accounts.models import Account
    from phonestatus.accounts.service import create_account, enable_feature
    from phonestatus.batch.export import export_job
    from phonestatus.batch.readers import ReaderLimits
    from phonestatus.batch.service import JobRequest, create_job, get_job
    from phonestatus.batch.wiring import WorkerResources
    from phonestatus.batch.writers import OutputFormat
    from phonestatus.billing import PriceList
    from phonestatus.runtime import Runtime
    from phonestatus.settings import Settings

    settings = Settings(
        data_dir=work_dir / "data",
        database_url=database_url,
        secret_key="bench-secret-key-bench-secret-key-0123",
        simulator_latency_scale=0.0,
        simulator_carrier_capacity=options.carrier_capacity,
        number_rate_limit="off",
        batch_chunk_size=options.chunk_size,
        writer_process=options.commits == "process",
    )
    runtime = Runtime.build(settings)
    clock = runtime.clock
    async with runtime.session_factory() as session, session.begin():
        account = await create_account(session, name="bench", verified=True, clock=clock)
        await enable_feature(session, account.id, accepted_by="bench", clock=clock)
        # The per-account limit still applies; the bench account is allowed a high rate.
        (await session.get(Account, account.id)).rate_limit = options.account_rate_limit  # type: ignore[union-attr]
        account_id = account.id

    prices = PriceList.from_settings(settings)
    sampler = MemorySampler()
    sampler.start()
    started = time.perf_counter()
    async with runtime.session_factory() as session, session.begin():
        job, _ = await create_job(
            session,
            JobRequest(account_id=account_id, path=source, filename=source.name),
            limits=ReaderLimits.from_settings(settings),
            chunk_size=settings.batch_chunk_size,
            prices=prices,
            clock=clock,
            cipher=SecretCipher(runtime.secret_key),
        )
        assert job is not None
        job_id = job.id
    stored = time.perf_counter()
    stored_rss_mb = _peak_rss_mb()

    # The worker as `serve` and `batch run` build it, SQLite writer process included.
    resources = WorkerResources(runtime)
    worker = resources.worker
    if not options.skip_queries:
        await worker.run_until_idle(job_id)
    # Closed before the result file is written, as `batch run` does: the writer exits.
    writer_pid = resources.commits.pid if resources.commits is not None else None
    writer_peak_rss_mb = _peak_rss_mb_of(writer_pid) if writer_pid is not None else 0
    await resources.aclose()
    queried = time.perf_counter()
    queried_rss_mb = _peak_rss_mb()

    async with runtime.session_factory() as session:
        job = await get_job(session, job_id)
    output_format = OutputFormat(source.suffix.lstrip("."))
    output = work_dir / f"result.{output_format.value}"
    summary = await export_job(
        runtime.session_factory,
        job,
        output,
        output_format,
        database_url=settings.sqlalchemy_url,
    )
    written = time.perf_counter()
    sampler.stop()
    await runtime.close()
    # CPU time, unlike wall time, does not grow when other processes share the cores.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # The SQLite writer process and the export helper have exited and been waited for.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_rss_mb = round(usage.ru_maxrss / 1024)

    return {
        "rows": summary.rows,
        "invalid_rows": job.invalid_rows,
        "duplicate_rows": job.duplicate_rows,
        "distinct_numbers": job.distinct_numbers,
        "state": job.state,
        "store_seconds": round(stored - started, 1),
        "query_and_bill_seconds": round(queried - stored, 1),
        "write_seconds": round(written - queried, 1),
        "total_seconds": round(written - started, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "children_cpu_seconds": round(children.ru_utime + children.ru_stime, 1),
        "peak_rss_mb": peak_rss_mb,
        "writer_peak_rss_mb": writer_peak_rss_mb,
        # The largest sum of all processes' RSS, sampled every 50 ms. Sampling can
        # miss a spike, so the larger single peak is a lower bound for it.
        "sampled_combined_rss_mb": sampler.peak_mb,
        # Peaks so far at the end of each phase: which phase set the peak.
        "peak_rss_mb_after_store": stored_rss_mb,
        "peak_rss_mb_after_query": queried_rss_mb,
    }


class MemorySampler(threading.Thread):
    """Track the largest sum of the RSS of this process and all its descendants.

    The descendants are the SQLite writer process while chunks are queried
    and the export helper while the result file is written.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
        while not self._stopped.wait(0.05):
            total = sum(_resident_pages(pid) for pid in _process_tree(os.getpid()))
            self.peak_mb = max(self.peak_mb, round(total * page_mb))

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def _process_tree(root: int) -> list[int]:
    """Return ``root`` and the pids of all its living descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        # A process may exit between listing and reading.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree = [root]
    for pid in tree:
        tree.extend(children.get(pid, []))
    return tree


def _resident_pages(pid: int) -> int:
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return 0


def _peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _peak_rss_mb_of(pid: int) -> int:
    """Return a running process's peak RSS since it started its program (VmHWM).

    Not RUSAGE_CHILDREN: on Linux that counts a child's pages from before its
    exec, when it was still a copy of this process.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError(f"VmHWM missing from /proc/{pid}/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default=None, help="database URL; default: SQLite file")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--skip-queries", action="store_true", help="store and write only")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=2000,
        help="distinct numbers per chunk (default 2000, as in the product)",
    )
    parser.add_argument(
        "--account-rate-limit",
        default="1000000/second",
        help="the bench account's query rate in `limits` notation (default 1000000/second)",
    )
    parser.add_argument(
        "--carrier-capacity",
        default="CMCC=1000000/second,CUCC=1000000/second,CTCC=1000000/second,CBN=1000000/second",
        help="simulated carrier capacity in `limits` notation; empty for none",
    )
    parser.add_argument(
        "--commits",
        choices=["process", "thread"],
        default="process",
        help="where SQLite chunks commit (PHONESTATUS_WRITER_PROCESS; default process)",
    )
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run is not None:
        # Child process: run one file end to end and report as JSON.
        result = asyncio.run(run_pipeline(args.run, args.database, args.work_dir, args))
        print(json.dumps(result))
        return

    numbers = generate_numbers(args.rows)
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as directory:
        root = Path(directory)
        for file_format in args.formats.split(","):
            source = root / f"numbers.{file_format}"
            (write_csv if file_format == "csv" else write_xlsx)(source, numbers)
            work_dir = root / f"run-{file_format}"
            work_dir.mkdir()
            command = [sys.executable, __file__, "--run", str(source), "--work-dir", str(work_dir)]
            command += ["--chunk-size", str(args.chunk_size)]
            command += ["--account-rate-limit", args.account_rate_limit]
            command += ["--carrier-capacity", args.carrier_capacity]
            command += ["--commits", args.commits]
            if args.database:
                command += ["--database", args.database]
            if args.skip_queries:
                command.append("--skip-queries")
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                print(completed.stderr, file=sys.stderr)
                raise SystemExit(f"{file_format} run failed")
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            size_mb = source.stat().st_size / 1024 / 1024
            print(f"{file_format}: {size_mb:.1f} MB file, {json.dumps(result)}")


if __name__ == "__main__":
    main()
