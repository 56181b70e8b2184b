"""The two kinds of failure a user can see, mapped to the CLI's exit codes."""


class NeuralzipError(Exception):
    exit_code = 1


class ContainerError(NeuralzipError):
    """The .nz file cannot be trusted: corrupt, truncated, checksum or verify
    mismatch, unknown format version, weights not available (exit 1)."""

    exit_code = 1


class InputError(NeuralzipError):
    """Unsupported or unreadable input, bad usage, refusal to overwrite (exit 2)."""

    exit_code = 2
