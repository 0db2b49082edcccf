"""Hash tables that map keys to dense group ids, in the order keys are first seen.

All tables use open addressing with linear probing over a power-of-two number of slots. A slot
holds ``-1`` when empty, else the group id stored there. The caller sizes the tables and passes
``max_groups``: a kernel stops *before* it would create group number ``max_groups`` and returns
the row where it stopped, so that the caller can grow the tables (see :func:`rehash_int_keys`,
:func:`rehash_string_keys`) and resume from that row. No kernel checks
its input; the public layer guarantees shapes and sizes.

Validity bitmaps are Arrow's: bit ``i + bit_offset`` of ``bitmap`` tells whether row ``i`` is
valid. An empty bitmap means "no nulls".
"""

from __future__ import annotations

import numpy as np

from rfm_fast._kernels.config import jit, jit_inline
from rfm_fast._kernels.layout import EMPTY


@jit_inline
def is_valid(bitmap, bit_offset, i):
    """Arrow validity bit of row ``i`` (True when ``bitmap`` is empty)."""
    if bitmap.shape[0] == 0:
        return True
    j = i + bit_offset
    return (bitmap[j >> 3] >> (j & 7)) & 1 == 1


@jit_inline
def mix64(value):
    """splitmix64 finalizer: a fast, well-spread hash of a 64-bit integer (as uint64)."""
    z = np.uint64(value)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit_inline
def unmix64(value):
    """The inverse of :func:`mix64` (it is a bijection of 64-bit words), as int64: the key
    whose hash ``value`` is."""
    z = np.uint64(value)
    z = z ^ (z >> np.uint64(31)) ^ (z >> np.uint64(62))
    z = z * np.uint64(0x319642B2D24D8EC3)  # the inverse of 0x94D049BB133111EB modulo 2**64
    z = z ^ (z >> np.uint64(27)) ^ (z >> np.uint64(54))
    z = z * np.uint64(0x96DE1B173F119089)  # the inverse of 0xBF58476D1CE4E5B9
    z = z ^ (z >> np.uint64(30)) ^ (z >> np.uint64(60))
    return np.int64(z)


@jit_inline
def hash_bytes(data, start, stop):
    """Hash of ``data[start:stop]`` (64-bit FNV-1a followed by a splitmix64 finalizer)."""
    h = np.uint64(0xCBF29CE484222325)
    prime = np.uint64(0x100000001B3)
    for k in range(start, stop):
        h = (h ^ np.uint64(data[k])) * prime
    return mix64(h ^ np.uint64(stop - start))


# --------------------------------------------------------------------------- integer keys


@jit
def factorize_int_keys(
    keys, bitmap, bit_offset, start, slot_keys, slot_groups, group_keys, n_groups, max_groups, out
):
    """Map integer ``keys[start:]`` to group ids in ``out`` (``-1`` for null rows).

    ``n_groups`` is a one-element int64 array, updated in place. Returns the row where the kernel
    stopped: ``len(keys)`` when done, else the first row whose new key did not fit.
    """
    mask = np.uint64(slot_keys.shape[0] - 1)
    count = n_groups[0]
    n = keys.shape[0]
    for i in range(start, n):
        if not is_valid(bitmap, bit_offset, i):
            out[i] = EMPTY
            continue
        key = np.int64(keys[i])
        slot = np.int64(mix64(key) & mask)
        while True:
            group = slot_groups[slot]
            if group == EMPTY:
                if count >= max_groups:
                    n_groups[0] = count
                    return i
                slot_groups[slot] = count
                slot_keys[slot] = key
                group_keys[count] = key
                group = count
                count += 1
                break
            if slot_keys[slot] == key:
                break
            slot = (slot + 1) & np.int64(mask)
        out[i] = group
    n_groups[0] = count
    return n


@jit
def rehash_int_keys(group_keys, n_groups, slot_keys, slot_groups):
    """Insert groups ``0..n_groups-1`` into empty (all ``-1``) slot arrays of a new size."""
    mask = np.uint64(slot_keys.shape[0] - 1)
    for group in range(n_groups):
        key = group_keys[group]
        slot = np.int64(mix64(key) & mask)
        while slot_groups[slot] != EMPTY:
            slot = (slot + 1) & np.int64(mask)
        slot_groups[slot] = group
        slot_keys[slot] = key


# --------------------------------------------------------------------------- string keys


@jit
def factorize_string_keys(
    offsets,
    data,
    bitmap,
    bit_offset,
    start,
    slot_hashes,
    slot_groups,
    arena,
    arena_offsets,
    group_hashes,
    n_groups,
    max_groups,
    out,
):
    """Map the strings of an Arrow string array to group ids in ``out`` (``-1`` for nulls).

    Parameters
    ----------
    offsets, data : int array, uint8 array
        The string array's offsets (already shifted to its offset) and data buffers.
    bitmap, bit_offset : uint8 array, int
        Its validity bitmap (empty: no nulls) and bit offset.
    start : int
        The first row to map (a call that stopped is resumed there).
    slot_hashes, slot_groups : uint64 array, int64 array
        The open-addressing table (a power-of-two size): each slot's hash, and its group
        (``-1``: empty).
    arena, arena_offsets : uint8 array, int64 array
        The groups' bytes: group ``g``'s are ``arena[arena_offsets[g]:arena_offsets[g + 1]]``.
    group_hashes : uint64 array
        Each group's hash (to rehash without rereading the bytes).
    n_groups : int64 array, ``(1,)``
        Groups so far; advanced in place.
    max_groups : int
        The most groups the table may hold.
    out : int64 array
        The group id of each row.

    Returns
    -------
    int
        The number of rows, or the row at which a new key would pass ``max_groups`` or the
        arena (the caller grows them and calls again from there).
    """
    mask = np.uint64(slot_hashes.shape[0] - 1)
    count = n_groups[0]
    arena_capacity = arena.shape[0]
    n = offsets.shape[0] - 1
    for i in range(start, n):
        if not is_valid(bitmap, bit_offset, i):
            out[i] = EMPTY
            continue
        lo = np.int64(offsets[i])
        hi = np.int64(offsets[i + 1])
        length = hi - lo
        # The key of the row before, again (an order's lines, a customer's orders, sorted
        # files): its group without hashing or probing. Row i - 1 was written, also when a
        # call resumes at ``start``.
        if i > 0 and out[i - 1] != EMPTY and np.int64(offsets[i - 1]) == lo - length:
            before = lo - length
            same = True
            for k in range(length):
                if data[before + k] != data[lo + k]:
                    same = False
                    break
            if same:
                out[i] = out[i - 1]
                continue
        h = hash_bytes(data, lo, hi)
        slot = np.int64(h & mask)
        while True:
            group = slot_groups[slot]
            if group == EMPTY:
                used = arena_offsets[count]
                if count >= max_groups or used + length > arena_capacity:
                    n_groups[0] = count
                    return i
                for k in range(length):
                    arena[used + k] = data[lo + k]
                arena_offsets[count + 1] = used + length
                slot_groups[slot] = count
                slot_hashes[slot] = h
                group_hashes[count] = h
                group = count
                count += 1
                break
            if slot_hashes[slot] == h:
                g_lo = arena_offsets[group]
                if arena_offsets[group + 1] - g_lo == length:
                    same = True
                    for k in range(length):
                        if arena[g_lo + k] != data[lo + k]:
                            same = False
                            break
                    if same:
                        break
            slot = (slot + 1) & np.int64(mask)
        out[i] = group
    n_groups[0] = count
    return n


@jit
def rehash_string_keys(group_hashes, n_groups, slot_hashes, slot_groups):
    """Insert string groups ``0..n_groups-1`` into empty slot arrays of a new size."""
    mask = np.uint64(slot_hashes.shape[0] - 1)
    for group in range(n_groups):
        h = group_hashes[group]
        slot = np.int64(h & mask)
        while slot_groups[slot] != EMPTY:
            slot = (slot + 1) & np.int64(mask)
        slot_groups[slot] = group
        slot_hashes[slot] = h


# --------------------------------------------------------------------------- buckets


@jit
def int_key_buckets(keys, buckets, out):
    """``out[i]``: the bucket in ``0..buckets-1`` of integer key ``keys[i]`` (a hash, so the
    same key falls in the same bucket in every process)."""
    count = np.uint64(buckets)
    for i in range(keys.shape[0]):
        out[i] = np.int64(mix64(keys[i]) % count)


@jit
def text_key_buckets(offsets, data, buckets, out):
    """``out[i]``: the bucket in ``0..buckets-1`` of the bytes ``data[offsets[i]:offsets[i+1]]``
    (the offsets and data buffers of an Arrow string array)."""
    count = np.uint64(buckets)
    for i in range(out.shape[0]):
        out[i] = np.int64(hash_bytes(data, np.int64(offsets[i]), np.int64(offsets[i + 1])) % count)


@jit_inline
def _pair_slot(customer, value, mask):
    return np.int64(
        mix64(np.uint64(customer) * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(value)) & mask
    )


@jit
def new_pairs(customers, values, base_customers, base_values, slots, keep):
    """Which (customer, value) pairs are new: ``keep[i]`` is set when pair ``i`` is neither in
    the base pairs nor an earlier pair of its own list.

    ``slots`` is a power-of-two table of at least ``2 * len(customers)`` entries, all
    ``EMPTY``: pairs ``i`` are inserted (the slot holds ``i``), then every base pair is looked
    up and clears ``keep`` of the pair it finds. Linear in both lists; the base pairs (a large
    state's, distinct among themselves) are only read.
    """
    mask = np.int64(slots.shape[0] - 1)
    for i in range(customers.shape[0]):
        c, v = customers[i], values[i]
        h = _pair_slot(c, v, mask)
        keep[i] = True
        while slots[h] != EMPTY:
            j = slots[h]
            if customers[j] == c and values[j] == v:
                keep[i] = False
                break
            h = (h + 1) & mask
        if keep[i]:
            slots[h] = i
    for k in range(base_customers.shape[0]):
        c, v = base_customers[k], base_values[k]
        h = _pair_slot(c, v, mask)
        while slots[h] != EMPTY:
            j = slots[h]
            if customers[j] == c and values[j] == v:
                keep[j] = False
                break
            h = (h + 1) & mask


@jit
def text_hashes(offsets, data, out):
    """``out[i]``: the hash of text ``i`` (:func:`hash_bytes`), as int64 bits."""
    for i in range(out.shape[0]):
        out[i] = np.int64(hash_bytes(data, np.int64(offsets[i]), np.int64(offsets[i + 1])))


@jit
def pair_set_digest(customers, values, out):
    """An order-free digest of a set of distinct (customer, value) pairs: ``out[0]`` the sum and
    ``out[1]`` the xor of a 64-bit hash of each pair (the same set in any order gives the same
    two words)."""
    total = np.uint64(0)
    mixed = np.uint64(0)
    for i in range(customers.shape[0]):
        h = mix64(mix64(np.uint64(customers[i])) ^ np.uint64(values[i]))
        total += h
        mixed ^= mix64(h + np.uint64(0x9E3779B97F4A7C15))
    out[0] = np.int64(total)
    out[1] = np.int64(mixed)
