"""LLVM intrinsics that Numba does not expose."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, index):
    """Hint the CPU to load ``array[index]`` (1-D) into the cache; never faults.

    Hash-table kernels prefetch the slot of a row a few rows ahead, so that the memory latency
    of a table larger than the cache overlaps with the work on the rows in between.
    """
    signature = types.void(array, index)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, ary, [args[1]], wraparound=False, boundscheck=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0i8",
        )
        # (address, read, high temporal locality, data cache)
        builder.call(
            function,
            [
                builder.bitcast(pointer, byte_pointer),
                ir.Constant(i32, 0),
                ir.Constant(i32, 3),
                ir.Constant(i32, 1),
            ],
        )
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def store_nontemporal(typingctx, array, index, value):
    """``array[index] = value`` (1-D) with a non-temporal store: the line is
    written to memory without being read into the cache first (no read-for-ownership).

    Bounds are checked where Numba's bounds checking is on (``NUMBA_BOUNDSCHECK=1``).

    For whole cache lines written once and read much later, such as the blocks that a scatter
    flushes into its record buffers. The stores are weakly ordered: call :func:`store_fence`
    before other threads may read what they wrote.
    """
    signature = types.void(array, index, value)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context,
            builder,
            array_type,
            ary,
            [args[1]],
            wraparound=False,
            boundscheck=context.enable_boundscheck,
        )
        stored = context.cast(builder, args[2], sig.args[2], array_type.dtype)
        store = builder.store(stored, pointer, align=array_type.dtype.bitwidth // 8)
        store.set_metadata(
            "nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        )
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def store_fence(typingctx):
    """A full memory fence (LLVM ``fence seq_cst``): every store before it, non-temporal ones
    included, is visible to other threads before any memory access after it. On x86-64 LLVM
    emits a locked instruction (``lock or``), which also empties the write-combining buffers
    that non-temporal stores go through."""
    signature = types.void()

    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return signature, codegen
