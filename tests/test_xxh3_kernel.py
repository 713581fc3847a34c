"""The compiled XXH3-64 (boilerplate's first pass hashes its line keys with it) gives xxhash's values."""

from __future__ import annotations

import numpy as np
import xxhash

from pipeline.stages.xxh3_kernel import xxh3_64


def test_xxh3_64_equals_xxhash_for_every_length_and_offset() -> None:
    # Every length to 3,000 bytes: each of XXH3's paths (0, 1-3, 4-8, 9-16, 17-128, 129-240 bytes, and the
    # long one's stripes, 1,024-byte blocks and last partial stripe), at an aligned and an unaligned start.
    rng = np.random.default_rng(11)
    data = rng.integers(0, 256, 3100, dtype=np.uint8)
    for n in range(3001):
        for start in (0, 5):
            assert int(xxh3_64(data, start, n)) == xxhash.xxh3_64_intdigest(data[start : start + n].tobytes()), n
    for size in (4096, 5000, 20000):  # several whole blocks
        long = rng.integers(0, 256, size, dtype=np.uint8)
        assert int(xxh3_64(long, 0, size)) == xxhash.xxh3_64_intdigest(long.tobytes())
    text = "Über uns · Kontakt".encode()
    assert int(xxh3_64(np.frombuffer(text, np.uint8), 0, len(text))) == xxhash.xxh3_64_intdigest(text)
