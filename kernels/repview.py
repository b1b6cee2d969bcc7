"""A replication's table whose offset is read where it is used: the CUDA kernels' state views.

A plain view ``table[r]`` is the pointer ``base + r x stride``. LLVM computes it once per view and keeps
it live across the event loop: on sm_90 the 16 per-replication views held about 78 of the thread advance
kernel's 184 registers (benchmarks/register_probe.py). A :class:`RepViewType` value instead holds the
whole ``[replication, ...]`` table, the launch's offset table and the view's numbers ``(r, k)``; every
element access first loads ``offsets[r, k]``, where replication ``r``'s block of table ``k`` starts, and
adds the element's place in the block. The load goes through an inline-asm ``ld`` that neither LLVM nor
ptxas may hoist or merge, so no pointer stays live between accesses: each is rebuilt from the table's
base, a kernel parameter read from the constant bank, and an offset that is an L1 hit after the first
read. That took the thread advance kernel from 184 registers to 110 (offline, sm_90; docs/ARCHITECTURE.md,
"Where the registers go"). Loading the replication's row instead of its offset saved only 30: the
per-table strides ``rows x columns`` were then hoisted in turn.

Indexing follows NumPy on the replication's own table: ``view[i]`` and ``view[i, j]`` read or write one
element of a 1-D or 2-D view, ``view[i]`` of a 2-D view is row ``i`` (a :class:`RowViewType`, indexed the same way), and ``view.shape``
is the table's shape without the replication axis. The engine (kernels/engine.py) indexes a view exactly
as it indexes an array, so the model is unchanged; :func:`kernels.state.make_offset_views` builds them.
The overloads are registered for the CPU as well as for CUDA: ``tests/test_repview.py`` runs the engine
on the CPU with these views and checks that it gives the plain views' state bit for bit. Only
:func:`load_offset` differs by target (a plain load on the CPU). The views count no references to their
arrays: build and use them only in code compiled without numba's reference counting (CUDA kernels, and
on the CPU functions compiled with ``_nrt=False`` like the engine's device functions).
"""
from __future__ import annotations

import operator

from numba.core import types


class RepViewType(types.Type):
    """Replication ``r``'s view of table ``k``: a ``[replication, ...]`` table and the launch's offsets."""

    def __init__(self, table: types.Array, offsets: types.Array):
        self.table, self.offsets = table, offsets
        self.dtype, self.ndim = table.dtype, table.ndim - 1
        super().__init__(name=f"RepView({table}, {offsets})")


class RowViewType(types.Type):
    """Row ``i`` of a 2-D :class:`RepViewType` (``view[i]``): a view too, so that no array is returned
    (numba's CPU functions without reference counting may not return a new array)."""

    def __init__(self, table: types.Array, offsets: types.Array):
        self.table, self.offsets = table, offsets
        self.dtype, self.ndim = table.dtype, 1
        super().__init__(name=f"RowView({table}, {offsets})")


MEMBERS = ("table", "offsets", "r", "k")
ROW_MEMBERS = (*MEMBERS, "i")


def _members(fe_type):
    return list(zip(MEMBERS, (fe_type.table, fe_type.offsets, types.int64, types.int64)))


def _row_members(fe_type):
    return list(zip(ROW_MEMBERS, (fe_type.table, fe_type.offsets, types.int64, types.int64, types.int64)))


def load_offset(offsets, r, k):
    """``offsets[r, k]``, loaded where it is used (the module docstring says why)."""
    return offsets[r, k]


def element(table, index):
    """Element ``index`` of ``table`` read as one flat C-ordered array."""
    return table.ravel()[index]


def set_element(table, index, value):
    """Write element ``index`` of ``table`` read as one flat C-ordered array."""
    table.ravel()[index] = value


def _construct(typingctx, table, offsets, r, k):
    """``rep_view(table, offsets, r, k)``: replication ``r``'s view of ``table``, the ``k``-th state table."""
    if not (isinstance(table, types.Array) and table.layout == "C" and table.ndim in (2, 3)
            and isinstance(offsets, types.Array) and offsets.ndim == 2
            and isinstance(r, types.Integer) and isinstance(k, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        from numba.core import cgutils

        view = cgutils.create_struct_proxy(signature.return_type)(context, builder)
        view.table, view.offsets = args[0], args[1]
        view.r = context.cast(builder, args[2], signature.args[2], types.int64)
        view.k = context.cast(builder, args[3], signature.args[3], types.int64)
        return view._getvalue()

    return RepViewType(table, offsets)(table, offsets, r, k), codegen


def _element_pointer(context, builder, table_type, table, index):
    array = context.make_array(table_type)(context, builder, table)
    return builder.gep(array.data, [index])


def _element(typingctx, table, index):
    def codegen(context, builder, signature, args):
        return builder.load(_element_pointer(context, builder, signature.args[0], *args))

    return table.dtype(table, types.int64), codegen


def _set_element(typingctx, table, index, value):
    def codegen(context, builder, signature, args):
        stored = context.cast(builder, args[2], signature.args[2], signature.args[0].dtype)
        builder.store(stored, _element_pointer(context, builder, signature.args[0], args[0], args[1]))
        return context.get_dummy_value()

    return types.none(table, types.int64, value), codegen


def _asm_load_offset(typingctx, offsets, r, k):
    """CUDA: ``offsets[r, k]`` through ``ld.s64`` in inline asm with side effects (never hoisted or merged)."""

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        from numba.cuda import cgutils

        array = context.make_array(signature.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, signature.args[0], array, args[1:])
        load = ir.InlineAsm(ir.FunctionType(ir.IntType(64), [ir.IntType(64)]), "ld.s64 $0, [$1];", "=l,l",
                            side_effect=True)
        return builder.call(load, [builder.ptrtoint(pointer, ir.IntType(64))])

    return types.int64(offsets, types.int64, types.int64), codegen


def _getitem_row(view, index):
    if isinstance(view, RepViewType) and isinstance(index, types.Integer) and view.ndim == 2:
        def get_row(view, index):
            return row_view(view, index)
        return get_row
    return None


def _getitem(view, index):
    if not isinstance(view, RepViewType):
        return None
    if isinstance(index, types.Integer) and view.ndim == 1:
        def get(view, index):
            return element(view.table, load_offset(view.offsets, view.r, view.k) + index)
        return get
    if isinstance(index, types.BaseTuple) and len(index) == 2 and view.ndim == 2:
        def get2(view, index):
            start = load_offset(view.offsets, view.r, view.k)
            return element(view.table, start + index[0] * view.table.shape[2] + index[1])
        return get2
    return None


def _row_getitem(row, index):
    if isinstance(row, RowViewType) and isinstance(index, types.Integer):
        def get(row, index):
            start = load_offset(row.offsets, row.r, row.k) + row.i * row.table.shape[2]
            return element(row.table, start + index)
        return get
    return None


def _row_setitem(row, index, value):
    if isinstance(row, RowViewType) and isinstance(index, types.Integer):
        def put(row, index, value):
            start = load_offset(row.offsets, row.r, row.k) + row.i * row.table.shape[2]
            set_element(row.table, start + index, value)
        return put
    return None


def row_view(view, i):
    """Row ``i`` of a 2-D view, as a :class:`RowViewType`."""
    raise NotImplementedError("compiled only")


def _construct_row(typingctx, view, i):
    if not (isinstance(view, RepViewType) and view.ndim == 2 and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        from numba.core import cgutils

        parent = cgutils.create_struct_proxy(signature.args[0])(context, builder, value=args[0])
        row = cgutils.create_struct_proxy(signature.return_type)(context, builder)
        row.table, row.offsets, row.r, row.k = parent.table, parent.offsets, parent.r, parent.k
        row.i = context.cast(builder, args[1], signature.args[1], types.int64)
        return row._getvalue()

    return RowViewType(view.table, view.offsets)(view, i), codegen


def _setitem(view, index, value):
    if not isinstance(view, RepViewType):
        return None
    if isinstance(index, types.Integer) and view.ndim == 1:
        def put(view, index, value):
            set_element(view.table, load_offset(view.offsets, view.r, view.k) + index, value)
        return put
    if isinstance(index, types.BaseTuple) and len(index) == 2 and view.ndim == 2:
        def put2(view, index, value):
            start = load_offset(view.offsets, view.r, view.k)
            set_element(view.table, start + index[0] * view.table.shape[2] + index[1], value)
        return put2
    return None


def _shape(view):
    def shape(view):
        return view.table.shape[1:]
    return shape


def _plain_load_offset(offsets, r, k):
    def load(offsets, r, k):
        return offsets[r, k]
    return load


def _register(extending, target_options, asm_offsets):
    class RepViewModel(extending.models.StructModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, _members(fe_type))

    class RowViewModel(extending.models.StructModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, _row_members(fe_type))

    extending.register_model(RepViewType)(RepViewModel)
    extending.register_model(RowViewType)(RowViewModel)
    for member in MEMBERS:
        extending.make_attribute_wrapper(RepViewType, member, member)
    for member in ROW_MEMBERS:
        extending.make_attribute_wrapper(RowViewType, member, member)
    construct_row = extending.intrinsic(_construct_row)
    overload = lambda func: extending.overload(func, inline="always", **target_options)  # noqa: E731
    overload(row_view)(lambda view, i: lambda view, i: construct_row(view, i))
    # Only the getitem that returns a row view is inlined in numba's IR (a device function may not return a
    # new view). The element reads and writes are ordinary overloads: numba types each once per signature
    # and LLVM inlines them. Inlined in numba's IR at each of the model's thousands of accesses, they were
    # over half of a CUDA kernel's compile (type inference re-run at every site), for the same PTX.
    overload(operator.getitem)(_getitem_row)
    extending.overload(operator.getitem, **target_options)(_row_getitem)
    extending.overload(operator.setitem, **target_options)(_row_setitem)
    extending.overload(operator.getitem, **target_options)(_getitem)
    extending.overload(operator.setitem, **target_options)(_setitem)
    extending.overload_attribute(RepViewType, "shape", **target_options)(_shape)
    element_at, set_element_at = extending.intrinsic(_element), extending.intrinsic(_set_element)
    overload(element)(lambda table, index: lambda table, index: element_at(table, index))
    overload(set_element)(lambda table, index, value: lambda table, index, value: set_element_at(table, index, value))
    if asm_offsets:
        asm_load = extending.intrinsic(_asm_load_offset)
        overload(load_offset)(lambda offsets, r, k: lambda offsets, r, k: asm_load(offsets, r, k))
    else:
        overload(load_offset)(_plain_load_offset)
    return extending.intrinsic(_construct)


_builders = {}


def rep_view_builder(target: str):
    """The ``rep_view(table, offsets, r, k)`` intrinsic for ``target`` ("cpu" or "cuda"), registering the
    type and its overloads for that target once."""
    if target not in _builders:
        if target == "cpu":
            from numba.core import extending

            _builders[target] = _register(extending, {}, asm_offsets=False)
        else:
            from numba.cuda import extending

            _builders[target] = _register(extending, {"target": "cuda"}, asm_offsets=True)
    return _builders[target]
