"""XXH3-64 (seed 0, the default secret) in a compiled kernel: ``xxhash.xxh3_64_intdigest`` of a run of bytes,
for kernels that hash many short keys (boilerplate's first pass: one Python call and one bytes object a key
cost more than the hashing). The algorithm of xxHash 0.8 (``XXH3_64bits``), checked against the library for
every length up to 3,000 bytes (tests/test_xxh3_kernel.py)."""

from __future__ import annotations

from pipeline.stages import text_kernels  # noqa: F401 - numba as the stages import it (kernel cache, no scipy)

import sys  # noqa: E402  # isort: skip
from typing import Any  # noqa: E402  # isort: skip

import numpy as np  # noqa: E402  # isort: skip

# numba's njit, intrinsic, types and llvmlite's ir, or while the compiled kernels module is valid stand-ins
from pipeline.stages.aot_kernels import intrinsic, numba  # noqa: E402  # isort: skip
from pipeline.stages.aot_kernels import llvm_ir as ir  # noqa: E402  # isort: skip
from pipeline.stages.aot_kernels import numba_types as types  # noqa: E402  # isort: skip

_SECRET = np.frombuffer(
    bytes.fromhex(
        "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
        "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
        "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
        "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
        "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
        "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e"
    ),
    dtype=np.uint8,
).copy()
SECRET_SIZE = 192

P32_1 = np.uint64(0x9E3779B1)
P32_2 = np.uint64(0x85EBCA77)
P32_3 = np.uint64(0xC2B2AE3D)
P64_1 = np.uint64(0x9E3779B185EBCA87)
P64_2 = np.uint64(0xC2B2AE3D27D4EB4F)
P64_3 = np.uint64(0x165667B19E3779F9)
P64_4 = np.uint64(0x85EBCA77C2B2AE63)
P64_5 = np.uint64(0x27D4EB2F165667C5)
MX1 = np.uint64(0x165667919E3779F9)
MX2 = np.uint64(0x9FB21C651E98DF25)
LOW32 = np.uint64(0xFFFFFFFF)


def _loader(size: int) -> Any:
    """An intrinsic: the ``size`` bytes at arr[offset:] (uint8, contiguous) as one unaligned load, zero-extended
    to uint64: a little-endian machine's integer. A loop of byte reads, shifts and ors was not merged into one
    load by LLVM (the signed index's wraparound check in between); it took ~1/3 of xxh3_64's time on short keys."""

    @intrinsic
    def load(typingctx: Any, arr: Any, offset: Any) -> Any:
        if not (isinstance(arr, types.Array) and arr.dtype == types.uint8 and arr.layout == "C"):
            return None  # (typing fails: bytes at an offset need a contiguous uint8 array)
        sig = types.uint64(arr, types.intp)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8 * size).as_pointer())
            value = builder.load(ptr, align=1)
            return value if size == 8 else builder.zext(value, ir.IntType(64))

        return sig, codegen

    return load


_load8, _load4 = _loader(8), _loader(4)


@intrinsic
def _fold128(typingctx: Any, a: Any, b: Any) -> Any:
    """The 128-bit product of two uint64, its halves xor-ed, as one wide multiply (four 32-bit ones before)."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        low = builder.trunc(product, ir.IntType(64))
        high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
        return builder.xor(low, high)

    return sig, codegen


if sys.byteorder == "little":

    @numba.njit(cache=True, nogil=True, inline="always")
    def _read_le(b: np.ndarray, o: int, n: int) -> np.uint64:
        """The n (4 or 8, a constant) bytes at b[o:] as a little-endian integer."""
        return _load8(b, o) if n == 8 else _load4(b, o)

else:  # (a big-endian machine: byte by byte)

    @numba.njit(cache=True, nogil=True, inline="always")
    def _read_le(b: np.ndarray, o: int, n: int) -> np.uint64:
        """The n (4 or 8) bytes at b[o:] as a little-endian integer."""
        v = np.uint64(0)
        for k in range(n):
            v |= np.uint64(b[o + k]) << np.uint64(8 * k)
        return v


@numba.njit(cache=True, nogil=True, inline="always")
def _fold(a: np.uint64, b: np.uint64) -> np.uint64:
    """The 128-bit product of a and b, its halves xor-ed."""
    return _fold128(a, b)


@numba.njit(cache=True, nogil=True, inline="always")
def _avalanche(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(37)
    h *= MX1
    return h ^ (h >> np.uint64(32))


@numba.njit(cache=True, nogil=True, inline="always")
def _xxh64_avalanche(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(33)
    h *= P64_2
    h ^= h >> np.uint64(29)
    h *= P64_3
    return h ^ (h >> np.uint64(32))


@numba.njit(cache=True, nogil=True, inline="always")
def _rotl(x: np.uint64, r: int) -> np.uint64:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@numba.njit(cache=True, nogil=True, inline="always")
def _mix16(b: np.ndarray, o: int, s: np.ndarray, so: int) -> np.uint64:
    return _fold(_read_le(b, o, 8) ^ _read_le(s, so, 8), _read_le(b, o + 8, 8) ^ _read_le(s, so + 8, 8))


@numba.njit(cache=True, nogil=True)
def _accumulate(acc: np.ndarray, b: np.ndarray, o: int, s: np.ndarray, so: int) -> None:
    for i in range(8):
        value = _read_le(b, o + 8 * i, 8)
        key = value ^ _read_le(s, so + 8 * i, 8)
        acc[i ^ 1] += value
        acc[i] += (key & LOW32) * (key >> np.uint64(32))


@numba.njit(cache=True, nogil=True)
def _long(b: np.ndarray, o: int, n: int, s: np.ndarray) -> np.uint64:
    acc = np.empty(8, dtype=np.uint64)
    acc[0], acc[1], acc[2], acc[3] = P32_3, P64_1, P64_2, P64_3
    acc[4], acc[5], acc[6], acc[7] = P64_4, P32_2, P64_5, P32_1
    stripes = (SECRET_SIZE - 64) // 8
    block = 64 * stripes
    blocks = (n - 1) // block
    for k in range(blocks):
        for j in range(stripes):
            _accumulate(acc, b, o + k * block + 64 * j, s, 8 * j)
        for i in range(8):  # scramble
            a = acc[i]
            a ^= a >> np.uint64(47)
            a ^= _read_le(s, SECRET_SIZE - 64 + 8 * i, 8)
            acc[i] = a * P32_1
    last = ((n - 1) - block * blocks) // 64
    for j in range(last):
        _accumulate(acc, b, o + blocks * block + 64 * j, s, 8 * j)
    _accumulate(acc, b, o + n - 64, s, SECRET_SIZE - 64 - 7)
    result = np.uint64(n) * P64_1
    for i in range(4):
        result += _fold(acc[2 * i] ^ _read_le(s, 11 + 16 * i, 8), acc[2 * i + 1] ^ _read_le(s, 11 + 16 * i + 8, 8))
    return _avalanche(result)


@numba.njit(cache=True, nogil=True)
def xxh3_64(b: np.ndarray, o: int, n: int) -> np.uint64:
    """``xxhash.xxh3_64_intdigest(bytes(b[o:o + n]))`` (``b``: uint8)."""
    s = _SECRET
    if n <= 16:
        if n > 8:
            lo = _read_le(b, o, 8) ^ (_read_le(s, 24, 8) ^ _read_le(s, 32, 8))
            hi = _read_le(b, o + n - 8, 8) ^ (_read_le(s, 40, 8) ^ _read_le(s, 48, 8))
            swapped = np.uint64(0)
            for k in range(8):  # byte swap of lo
                swapped |= ((lo >> np.uint64(8 * k)) & np.uint64(0xFF)) << np.uint64(56 - 8 * k)
            return _avalanche(np.uint64(n) + swapped + hi + _fold(lo, hi))
        if n >= 4:
            first = _read_le(b, o, 4)
            second = _read_le(b, o + n - 4, 4)
            keyed = (second + (first << np.uint64(32))) ^ (_read_le(s, 8, 8) ^ _read_le(s, 16, 8))
            keyed ^= _rotl(keyed, 49) ^ _rotl(keyed, 24)
            keyed *= MX2
            keyed ^= (keyed >> np.uint64(35)) + np.uint64(n)
            keyed *= MX2
            return keyed ^ (keyed >> np.uint64(28))
        if n > 0:
            c1 = np.uint64(b[o])
            c2 = np.uint64(b[o + (n >> 1)])
            c3 = np.uint64(b[o + n - 1])
            combined = (c1 << np.uint64(16)) | (c2 << np.uint64(24)) | c3 | (np.uint64(n) << np.uint64(8))
            return _xxh64_avalanche(combined ^ (_read_le(s, 0, 4) ^ _read_le(s, 4, 4)))
        return _xxh64_avalanche(_read_le(s, 56, 8) ^ _read_le(s, 64, 8))
    if n <= 128:
        acc = np.uint64(n) * P64_1
        if n > 32:
            if n > 64:
                if n > 96:
                    acc += _mix16(b, o + 48, s, 96)
                    acc += _mix16(b, o + n - 64, s, 112)
                acc += _mix16(b, o + 32, s, 64)
                acc += _mix16(b, o + n - 48, s, 80)
            acc += _mix16(b, o + 16, s, 32)
            acc += _mix16(b, o + n - 32, s, 48)
        acc += _mix16(b, o, s, 0)
        acc += _mix16(b, o + n - 16, s, 16)
        return _avalanche(acc)
    if n <= 240:
        acc = np.uint64(n) * P64_1
        for i in range(8):
            acc += _mix16(b, o + 16 * i, s, 16 * i)
        acc = _avalanche(acc)
        for i in range(8, n // 16):
            acc += _mix16(b, o + 16 * i, s, 16 * (i - 8) + 3)
        acc += _mix16(b, o + n - 16, s, 136 - 17)
        return _avalanche(acc)
    return _long(b, o, n, s)
