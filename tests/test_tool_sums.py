"""Only per-group sums of the per-tool tables leave the device; they are the host's sums of the full tables.

At a chunk's end the device sums the per-tool columns the KPIs use over each tool group
(``kernels/reduce.py``, launched per (replication, group)); the host receives those sums and the
first replication's full rows.  Here the full tables the chunks held are kept too (the reduction
is wrapped), and the host sums them itself: on the CPU, under numba's CUDA simulator (tiny case)
and on a real GPU when there is one.  The sums run in tool order, so they are bit-identical.
"""
from __future__ import annotations

import textwrap

import numpy as np

from backends import backend_kind, sized, tool_tables  # noqa: F401  (backend_kind is a fixture)
from cuda_check import run_script
from kernels import layout as K
from lines import exp_step, station
from twin import tool_sums


def line_data() -> dict:
    """Three groups of 3, 2 and 2 tools: failures and wafer-count PMs on A, setups on B, failures on C."""
    fail = {"ttf": {"dist": "exponential", "mean": 300.0}, "repair": {"dist": "exponential", "mean": 30.0}}
    pm = [{"name": "w", "every_wafers": 20, "duration": {"dist": "constant", "value": 15}}]
    groups = [station("A", 3, failures=fail, pm=pm), station("B", 2, setup={"minutes": 5.0}),
              station("C", 2, failures=fail)]
    route = [exp_step("A", 20.0), exp_step("B", 10.0, setup="x"), exp_step("C", 25.0),
             exp_step("B", 10.0, setup="y"), exp_step("A", 15.0)]
    releases = [{"name": "p", "product": "p", "kind": "poisson", "interval_minutes": 30.0, "lot_size": 1,
                 "due_days": 1000}]
    return {"name": "sums", "tool_groups": groups, "products": [{"name": "p", "route": route}],
            "releases": releases, "transport": 0.0}


def host_sums(table, tool_group, fields):
    """``[R, groups, len(fields)]``: the columns summed over each group's tools on the host, in tool order."""
    groups = int(tool_group.max()) + 1
    out = np.zeros((table.shape[0], groups, len(fields)), np.int64 if table.dtype.kind == "i" else np.float64)
    for t, g in enumerate(tool_group):
        out[:, g] += table[:, t, list(fields)]
    return out


def test_group_sums_are_the_host_sums_of_the_full_tables(backend_kind):
    replicas, days = sized(backend_kind, cpu=(5, 10.0), sim=(3, 1.5))
    got = tool_tables(backend_kind, line_data(), replicas, days, 0.25, seed=4, chunk_replicas=2)
    ti, tf, tool_group = got["ti"], got["tf"], got["tool_group"]
    assert ("simulator" in str(got["backend"])) == (backend_kind == "cuda-sim"), got["backend"]
    assert got["chunks"] == -(-replicas // 2) and ti.shape[0] == tf.shape[0] == replicas
    assert list(tool_group) == [0, 0, 0, 1, 1, 2, 2]  # a group's tools are contiguous
    group_ti, group_tf = got["stats.group_ti"], got["stats.group_tf"]
    assert group_ti.dtype == np.int64 and group_tf.dtype == np.float64
    np.testing.assert_array_equal(group_ti, host_sums(ti, tool_group, tool_sums.TI_SUMMED))
    np.testing.assert_array_equal(group_tf, host_sums(tf, tool_group, tool_sums.TF_SUMMED))
    # replication 0's rows are the first chunk's first replication, whole
    np.testing.assert_array_equal(got["stats.rep0_ti"], ti[0])
    np.testing.assert_array_equal(got["stats.rep0_tf"], tf[0])
    # the sums are not trivially zero: failures, PMs, setups and processing all happened
    stats = {"group_ti": group_ti, "group_tf": group_tf}
    assert tool_sums.ti_sum(stats, K.T_FAILS)[:, [0, 2]].sum() > 0 and tool_sums.ti_sum(stats, K.T_PMS)[:, 0].sum() > 0
    assert (tool_sums.e10_sum(stats)[:, :, K.PRODUCTIVE] > 0).all()
    assert (tool_sums.tf_sum(stats, K.TF_E10_0 + K.SETUP)[:, 1] > 0).all()


KERNEL_SCRIPT = textwrap.dedent("""
    import os
    import numpy as np
    from kernels import layout as K
    gi = np.zeros((3, K.N_GI), np.int32)
    gi[:, K.GI_FIRST_TOOL], gi[:, K.GI_NTOOLS] = [0, 2, 7], [2, 5, 1]
    rng = np.random.default_rng(0)
    tf = rng.random((4, 8, K.N_TF)) * 1e6
    ti = rng.integers(0, 1000, (4, 8, K.N_TI)).astype(np.int32)
    ti[:, 0:2, K.T_PMS] = 2**31 - 1  # an int32 count whose group sum needs int64
    f_fields, i_fields = np.array([K.TF_STANDBY_LOADED, K.TF_E10_0], np.int64), np.array([K.T_PMS, K.T_FAILS], np.int64)
    out_f, out_i = np.full((4, 3, 2), np.nan), np.full((4, 3, 2), -1, np.int64)  # every entry is written
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        from numba import cuda
        from kernels import launch_cuda as launch
        dev = [cuda.to_device(a) for a in (gi, tf, ti, out_f, out_i)]
        launch.group_sums(dev[0], dev[1], f_fields, dev[3])
        launch.group_sums(dev[0], dev[2], i_fields, dev[4])
        out_f, out_i = dev[3].copy_to_host(), dev[4].copy_to_host()
    else:
        from kernels import launch_cpu as launch
        launch.group_sums(gi, tf, f_fields, out_f)
        launch.group_sums(gi, ti, i_fields, out_i)
    for g, (first, n) in enumerate(zip(gi[:, K.GI_FIRST_TOOL], gi[:, K.GI_NTOOLS])):
        want_f, want_i = np.zeros((4, 2)), np.zeros((4, 2), np.int64)
        for t in range(first, first + n):  # tool order: the same float additions
            want_f += tf[:, t, f_fields]
            want_i += ti[:, t, i_fields]
        np.testing.assert_array_equal(out_f[:, g], want_f)
        np.testing.assert_array_equal(out_i[:, g], want_i)
    assert out_i[0, 0, 0] == 2 * (2**31 - 1)
    print("OK")
""")


def test_the_kernel_sums_each_group_in_tool_order_and_int64_on_the_cpu():
    namespace = {}
    exec(compile(KERNEL_SCRIPT, "kernel_script", "exec"), namespace)  # noqa: S102  (the script above)


def test_the_kernel_sums_each_group_in_tool_order_and_int64_under_the_simulator():
    proc = run_script(KERNEL_SCRIPT, simulator=True)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr
