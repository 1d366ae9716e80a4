"""Build configuration that pyproject.toml cannot express: the optional C extensions.

``sfu._fanout`` is optional: without a C compiler the install still succeeds and the SFU runs
its pure-Python loop (``sfu.lane.FAST_PATH`` says which one is in use).

``analytics._silk`` is optional too: it links libopus' static library (Debian: ``libopus-dev``,
``libopus.a``) to decode hybrid Opus packets without their CELT layer, which the analysis does
not need (docs/analytics.md, "Benchmark"). Without that library it is not built and the
analysis decodes through libopus' public API (``analytics.audio.OPUS_PATH`` says which).

``sfu._fanout`` links OpenSSL's libcrypto when its headers are there (Debian: ``libssl-dev``):
the C loop then protects AES-GCM SRTP itself (``sfu._fanout.AeadSession``); without them it is
built without it and every packet goes through libsrtp, as before.
"""

import glob
import os
import shutil
import subprocess

from setuptools import Extension, setup


def _static_libopus() -> str | None:
    wanted = os.environ.get("CLASSROOM_LIBOPUS_A")
    if wanted:
        return wanted if os.path.isfile(wanted) else None
    for pattern in ("/usr/lib/*-linux-gnu/libopus.a", "/usr/lib64/libopus.a", "/usr/lib/libopus.a",
                    "/usr/local/lib/libopus.a"):
        found = sorted(glob.glob(pattern))
        if found and _libopus_version(found[0]).startswith("1.3"):
            return found[0]
    return None


def _libopus_version(archive: str) -> str:
    """The version its pkg-config file states ("" if none): analytics/_silk.c declares libopus
    internals with 1.3.x's signatures, so another version is not linked (ctypes is used then)."""
    pc = os.path.join(os.path.dirname(archive), "pkgconfig", "opus.pc")
    try:
        with open(pc, encoding="utf-8") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _libcrypto() -> tuple[list[str], list[str]] | None:
    """(compile flags, link flags) for OpenSSL's libcrypto, or None without its headers."""
    if os.environ.get("CLASSROOM_NO_OPENSSL"):
        return None
    if shutil.which("pkg-config"):
        try:
            cflags = subprocess.run(["pkg-config", "--cflags", "libcrypto"], check=True, capture_output=True,
                                    text=True).stdout.split()
            libs = subprocess.run(["pkg-config", "--libs", "libcrypto"], check=True, capture_output=True,
                                  text=True).stdout.split()
            return cflags, libs
        except (OSError, subprocess.CalledProcessError):
            pass
    if os.path.isfile("/usr/include/openssl/evp.h"):
        return [], ["-lcrypto"]
    return None


_FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
          "-Wno-cast-function-type"]

_crypto = _libcrypto()
extensions = [
    Extension(
        "sfu._fanout",
        sources=["sfu/_fanout.c"],
        extra_compile_args=_FLAGS + (["-DCLASSROOM_OPENSSL"] + _crypto[0] if _crypto else []),
        extra_link_args=_crypto[1] if _crypto else [],
        optional=True,
    ),
    # the between-room fit's shift search (analytics/origin.py falls back to numpy without it)
    Extension("analytics._fit", sources=["analytics/_fit.c"], extra_compile_args=_FLAGS + ["-O3"], optional=True),
]
_libopus = _static_libopus()
if _libopus is not None:
    extensions.append(
        Extension(
            "analytics._silk",
            sources=["analytics/_silk.c"],
            include_dirs=["/usr/include/opus", "/usr/local/include/opus"],
            extra_compile_args=_FLAGS,
            extra_objects=[_libopus],
            # the static library's symbols stay inside the extension
            extra_link_args=["-Wl,--exclude-libs,ALL", "-lm"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
