"""The exception tree and exit codes; raised everywhere, mapped to exits by chaosml.cli.

    ChaosmlError                      exit 3 unless a subclass says otherwise
    ├── InvalidInputError             exit 4: a user file is wrong; nothing was injected
    │   └── ExperimentError           every problem of one experiment file, with positions
    ├── TargetError                   exit 3: the target could not be started/reached
    ├── RunAborted                    exit 2: interrupted or an abort condition held; faults recovered
    └── RecoveryError                 exit 5: a fault could not be recovered; message says how to undo it
    LoadConfigError (a ValueError)    the load process's config or payload file; its exit 4
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1  # a hypothesis failed, or compare found a regression
EXIT_ABORTED = 2
EXIT_INTERNAL = 3
EXIT_INVALID = 4
EXIT_RECOVERY_FAILED = 5

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "every hypothesis held",
    EXIT_FAILED: "a hypothesis failed or was inconclusive, or a regression was found",
    EXIT_ABORTED: "interrupted or aborted; every fault was recovered",
    EXIT_INTERNAL: "internal error, or the target could not be started",
    EXIT_INVALID: "invalid input; nothing was injected",
    EXIT_RECOVERY_FAILED: "a fault could not be recovered; the message says what is left and how to undo it",
}


class ChaosmlError(Exception):
    """Base of every error chaosml raises on purpose."""

    exit_code = EXIT_INTERNAL


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a user file, located by 1-based line/column and a field path."""

    file: str
    line: int
    column: int
    path: str  # e.g. faults[1].params.mode ("" for the document itself)
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvalidInputError(ChaosmlError):
    """A user file or argument is wrong."""

    exit_code = EXIT_INVALID


class ExperimentError(InvalidInputError):
    """All problems found in one file, each with its position."""

    def __init__(self, issues: list[Issue]):
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.column, i.path))
        super().__init__("\n".join(str(i) for i in self.issues))


class TargetError(ChaosmlError):
    """The target could not be started, reached or driven."""


class RunAborted(ChaosmlError):
    """The run stopped early; every fault was recovered."""

    exit_code = EXIT_ABORTED


class RecoveryError(ChaosmlError):
    """A fault could not be recovered."""

    exit_code = EXIT_RECOVERY_FAILED


class LoadConfigError(ValueError):
    """A load config (or its payload file) is invalid; ``issues`` holds one message per problem.

    A ValueError, not a ChaosmlError: the load process maps it to its own exit code (4).
    """

    def __init__(self, issues: list[str]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(self.issues))
