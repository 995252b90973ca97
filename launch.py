"""Process set-up shared by the entry points: XLA CPU flags, and `run`, which turns every user
error into one line on stderr.

Call `configure_xla_cpu` before anything runs a JAX computation: XLA reads XLA_FLAGS once, when
the backend starts (importing JAX does not start it). Flags the user already set win.
"""

import linecache
import os
import sys
from collections.abc import Callable

import jax
from absl import app, flags, logging

# Measured on the 2-core CPU (benchmarks/sampling.py has the figures): Eigen's dots beat XLA's
# default YNNPACK fusions (dots fused with their neighbours) 3.3x at a GPT-2 small decode step.
# Each dot through YNNPACK alone (`individual_dot`) decodes 1.07x faster, but trains 1.09-1.36x
# slower at 6 layers of d_model 512 (benchmarks/train_step.py), so it is not the default. XLA
# splits each dot over every core either way; Eigen's multi-threaded dots are no faster. CPU only.
CPU_XLA_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=", "--xla_cpu_multi_thread_eigen=false")

# What a user can cause: missing or unwritable files and full disks (OSError, from wherever it
# is raised), and what this project's own checks raise (`is_user_error`): bad values
# (ValueError, KeyError, TypeError) and a diverged run (FloatingPointError).
ENVIRONMENT_ERRORS = (OSError,)
CHECK_ERRORS = (ValueError, KeyError, TypeError, FloatingPointError)
REPO = os.path.dirname(os.path.abspath(__file__))

_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "On an error, show the full traceback (for bug reports), not one line."
)
_COMPILATION_CACHE = flags.DEFINE_bool(
    "compilation_cache",
    True,
    "Keep compiled XLA programs on disk ($JAX_COMPILATION_CACHE_DIR, else "
    "~/.cache/ar-vs-nar/jax), so the next run skips compiling them.",
)
CACHE_DIR = os.path.join("~", ".cache", "ar-vs-nar", "jax")
# Most programs here compile in 0.3-5 s on a CPU; JAX's default keeps only those over 1 s.
CACHE_MIN_COMPILE_SECONDS = 0.2


def configure_xla_cpu() -> None:
    """Adds CPU_XLA_FLAGS to XLA_FLAGS, unless the user set the same flag already."""
    flags_value = os.environ.get("XLA_FLAGS", "")
    for flag in CPU_XLA_FLAGS:
        if flag.split("=")[0] not in flags_value:
            flags_value = f"{flags_value} {flag}".strip()
    os.environ["XLA_FLAGS"] = flags_value


def configure_compilation_cache() -> str:
    """Turns on JAX's persistent compilation cache; returns its folder. Call before compiling."""
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.expanduser(CACHE_DIR)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECONDS)
    return folder


def message_of(error: BaseException) -> str:
    """The text of an error on one line: nested causes unwrapped, a KeyError's quotes dropped,
    line breaks joined ("; ", or a space after a colon)."""
    while len(error.args) == 1 and isinstance(error.args[0], BaseException):
        error = error.args[0]
    text = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)
    line = ""
    for part in (p.strip() for p in text.splitlines() if p.strip()):
        line += part if not line else (" " if line.endswith(":") else "; ") + part
    return line or type(error).__name__


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is the user's to fix (one line) rather than a bug (a traceback).

    An OSError is always the user's (a missing file, a read-only folder, a full disk). A
    CHECK_ERRORS instance is the user's only when a `raise` statement of this project raised
    it: one of our checks, whose message says what to do. The same types raised anywhere else
    (`d["metrics"]` on a damaged file, numpy, a library) are bugs, or checks still missing.
    """
    if isinstance(error, ENVIRONMENT_ERRORS):
        return True
    if not isinstance(error, CHECK_ERRORS) or error.__traceback__ is None:
        return False
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    ours = filename.startswith(REPO + os.sep) and os.sep + "site-packages" + os.sep not in filename
    return ours and linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise")


def _verbose_requested() -> bool:
    """--verbose from argv itself: the flags may be what failed to parse."""
    return any(arg in ("--verbose", "--verbose=true", "--verbose=True") for arg in sys.argv[1:])


def refuse_command_line(error: BaseException) -> None:
    """For flags parsed while they are defined (ml_collections' DEFINE_config_dict reads its
    overrides from argv then): the one-line exit `run` gives any bad command line."""
    if _verbose_requested():
        raise error
    program = os.path.relpath(sys.argv[0]) if sys.argv[0] else "python"
    _fail(program, f"bad command line: {message_of(error)}", 2)


def _fail(program: str, text: str, code: int) -> None:
    print(f"{program}: {text}", file=sys.stderr, flush=True)
    sys.exit(code)


def run(main: Callable[[list[str]], None]) -> None:
    """`absl.app.run(main)`, where a bad command line (a mistyped flag or config key, a stray
    argument, a flag's value out of its bounds) ends in one line and exit code 2, a user error
    raised by `main` (`is_user_error`) in one line and exit code 1, and Ctrl-C in exit code 130.
    Anything else is a bug and keeps its traceback; with --verbose, every error does.
    """
    program = os.path.relpath(sys.argv[0]) if sys.argv[0] else "python"

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except Exception as error:  # Anything raised while parsing comes from the command line.
            if _verbose_requested():
                raise
            _fail(program, f"bad command line: {message_of(error)}", 2)

    def guarded(argv: list[str]) -> None:
        if len(argv) > 1:  # No entry point takes positional arguments: a typo, not a wish.
            _fail(program, f"bad command line: unexpected arguments {argv[1:]}", 2)
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)  # Orbax and TFDS log every file at INFO.
        if _COMPILATION_CACHE.value:
            configure_compilation_cache()
        try:
            main(argv)
        except app.UsageError as error:
            _fail(program, f"bad command line: {message_of(error)}", 2)
        except Exception as error:
            if _VERBOSE.value or not is_user_error(error):
                raise
            _fail(program, message_of(error), 1)
        except KeyboardInterrupt:
            if _VERBOSE.value:
                raise
            _fail(program, "interrupted (Ctrl-C).", 130)

    app.run(guarded, flags_parser=parse)
