"""Real, playable MP3s for the emulator: a short melody encoded with LAME."""

from __future__ import annotations

import array
import math
from functools import lru_cache

import lameenc

# MPEG-1 (32 kHz and up) and MPEG-2 (below) allow different bitrates; the emulator
# encodes at the closest one the format allows to what was asked.
_MPEG1_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MELODY_HZ = (261.63, 329.63, 392.00, 523.25, 392.00, 329.63)


def encodable_kbps(bitrate: int, sample_rate: int) -> int:
    allowed = _MPEG1_KBPS if sample_rate >= 32000 else _MPEG2_KBPS
    return min(allowed, key=lambda kbps: (abs(kbps * 1000 - bitrate), kbps))


@lru_cache(maxsize=32)
def make_mp3(sample_rate: int = 44100, bitrate: int = 128000, seconds: float = 3.0) -> bytes:
    """A mono MP3 of `seconds` of a soft arpeggio, at the given rates."""
    total = int(sample_rate * seconds)
    note_len = max(1, total // len(_MELODY_HZ))
    samples = array.array("h", bytes(2 * total))
    for i in range(total):
        freq = _MELODY_HZ[min(i // note_len, len(_MELODY_HZ) - 1)]
        t = (i % note_len) / sample_rate
        envelope = min(1.0, t * 40) * math.exp(-2.5 * t)
        samples[i] = int(9000 * envelope * math.sin(2 * math.pi * freq * i / sample_rate))
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(encodable_kbps(bitrate, sample_rate))
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)
    encoder.set_channels(1)
    encoder.set_quality(7)
    return bytes(encoder.encode(samples.tobytes()) + encoder.flush())
