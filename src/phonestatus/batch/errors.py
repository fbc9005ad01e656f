"""Errors raised by the batch package.

BatchError
├── BatchFileError                 the uploaded file cannot be used
│   ├── UnsupportedFormat
│   ├── FileTooLarge
│   ├── TooManyRows
│   ├── ArchiveTooLarge            XLSX parts decompress beyond the limit (zip bomb guard)
│   ├── UndecodableFile
│   ├── NumberColumnNotFound
│   └── EmptyFile
├── JobNotFound
├── JobStateError                  the requested change is not allowed in the job's state
├── BatchAccountError              the account cannot start a job (unknown, feature off, blocked)
└── InvalidWebhook
"""

from __future__ import annotations


class BatchError(Exception):
    """Base class of every batch error."""


class BatchFileError(BatchError):
    """The file cannot be read as a list of numbers."""


class UnsupportedFormat(BatchFileError):
    def __init__(self, filename: str) -> None:
        self.filename = filename
        super().__init__(
            f"unsupported batch file {filename!r}: expected a .txt, .csv or .xlsx file"
        )


class FileTooLarge(BatchFileError):
    def __init__(self, size_bytes: int, limit_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes
        super().__init__(
            f"batch file is {size_bytes} bytes, above the limit of {limit_bytes} bytes "
            "(PHONESTATUS_BATCH_MAX_FILE_BYTES); split the file"
        )


class TooManyRows(BatchFileError):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"batch file has more than {limit} rows (PHONESTATUS_BATCH_MAX_ROWS); split the file"
        )


class ArchiveTooLarge(BatchFileError):
    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        super().__init__(
            f"XLSX file decompresses to more than {limit_bytes} bytes "
            "(PHONESTATUS_BATCH_MAX_XLSX_UNCOMPRESSED_BYTES); it is damaged or a zip bomb"
        )


class UndecodableFile(BatchFileError):
    def __init__(self, filename: str, detail: str) -> None:
        self.filename = filename
        super().__init__(
            f"cannot decode {filename!r} as UTF-8 or GB18030 ({detail}); save it as UTF-8"
        )


class NumberColumnNotFound(BatchFileError):
    def __init__(self, requested: str | None, header: tuple[str, ...]) -> None:
        self.requested = requested
        self.header = header
        shown = ", ".join(repr(cell) for cell in header[:20])
        if requested is None:
            message = (
                f"no phone number column found in the header [{shown}]; "
                "name it 手机号 or phone, or choose the column explicitly"
            )
        else:
            message = f"column {requested!r} not found in the header [{shown}]"
        super().__init__(message)


class EmptyFile(BatchFileError):
    def __init__(self, filename: str) -> None:
        self.filename = filename
        super().__init__(f"batch file {filename!r} contains no rows")


class JobNotFound(BatchError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"batch job {job_id!r} not found")


class JobStateError(BatchError):
    def __init__(self, job_id: str, state: str, action: str) -> None:
        self.job_id = job_id
        self.state = state
        self.action = action
        super().__init__(f"cannot {action} batch job {job_id!r} in state {state!r}")


class BatchAccountError(BatchError):
    def __init__(self, account_id: str, reason: str) -> None:
        self.account_id = account_id
        self.reason = reason
        super().__init__(f"account {account_id!r} cannot run batch jobs: {reason}")


class InvalidWebhook(BatchError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"invalid webhook URL {url!r}: {reason}")
