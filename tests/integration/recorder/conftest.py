from __future__ import annotations

from typing import Any

import pytest

from tests.integration.recorder.media import EncodedMedia, encode_audio, encode_video


@pytest.fixture(scope="session")
def lesson_media() -> dict[str, EncodedMedia]:
    """60 s of test media, encoded once per test session and shared by all tracks."""
    return {
        "vp8": encode_video("vp8", 60.0),
        "vp8_dark": encode_video("vp8", 60.0, shade=40),
        "h264": encode_video("h264", 60.0),
        "opus": encode_audio(60.0),
    }


class _NoCodecContainer:
    """Wraps an output container: the recorder may only add codec-less mux streams and mux."""

    def __init__(self, inner: Any, log: dict[str, list[Any]]) -> None:
        self._inner = inner
        self._log = log

    def add_mux_stream(self, *args: Any, **kwargs: Any) -> Any:
        stream = self._inner.add_mux_stream(*args, **kwargs)
        assert stream.codec_context is None
        self._log["streams"].append(stream)
        return stream

    def add_stream_from_template(self, template: Any, **kwargs: Any) -> Any:
        stream = self._inner.add_stream_from_template(template, **kwargs)
        assert stream.codec_context is None or not stream.codec_context.is_open
        self._log["streams"].append(stream)
        return stream

    def mux(self, packet: Any) -> None:
        self._log["muxed"].append(1)
        self._inner.mux(packet)

    def close(self) -> None:
        for stream in self._inner.streams:  # nothing was opened while muxing either
            assert stream.codec_context is None or not stream.codec_context.is_open
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        if name in ("add_stream", "decode", "demux", "encode"):
            raise AssertionError(f"the recorder called container.{name}")
        return getattr(self._inner, name)


class _Forbidden:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"the recorder used av.{self._name}.{attr}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the recorder used av.{self._name}")
