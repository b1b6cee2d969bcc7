"""Column layout of the engine's tables (struct of arrays).

Static line tables are 2-D ``[row, column]`` arrays; per-replication state has
one more axis for the replication, leading on both targets: a replication's
state is one contiguous block, so a kernel body's view of it is C-contiguous
and its index arithmetic needs no run-time strides (on CUDA the trailing axis
gave strided views that cost about 60 registers and made the advance kernel
spill; a warp that works on one replication reads neighbouring rows of the
same block).  Kernel bodies index the view with the constants below, which
numba folds at compile time.
"""

# ---- SEMI E10 states (tool state codes double as E10 indices)
PRODUCTIVE, STANDBY, SETUP, SCHED_DOWN, UNSCHED_DOWN = range(5)
N_E10 = 5
E10_NAMES = ("productive", "standby", "setup", "scheduled_down", "unscheduled_down")

# ---- lot status
FREE, QUEUED, IN_PROCESS, IN_TRANSIT = range(4)

# ---- event kinds (packed with id and version into one int64)
EV_RELEASE, EV_ARRIVE, EV_ACTIVITY_END, EV_FAIL, EV_PM_DUE, EV_BATCH_TIMEOUT, EV_LOT_DONE = range(7)
N_EVENT_KINDS = 7

# ---- failure bases; pm kinds; step time bases; release kinds
FAIL_NONE, FAIL_CALENDAR, FAIL_BUSY = range(3)
PM_NONE, PM_TIME, PM_WAFERS, PM_AGE = range(4)  # PM_AGE: due at an age since the last renewal
PER_WAFER, PER_LOT, PER_BATCH = range(3)
CHOICE_FIRST_IDLE, CHOICE_LEAST_SETUP = range(2)  # which idle tool a waiting lot goes to
REL_INTERVAL, REL_POISSON, REL_CONWIP = range(3)
MAX_PM = 4  # PM calendars per tool group

# ---- static: tool group table (int / float)
(GI_RULE, GI_FIRST_TOOL, GI_NTOOLS, GI_MIN_RUN, GI_FAIL_BASIS, GI_TTF_KIND, GI_REP_KIND, GI_FIRST_KIND,
 GI_DEDICATED, GI_HEALTH, GI_LEVEL_KIND, GI_CBM_POLICY, GI_CBM_DUR_KIND, GI_CBM_MIN_READINGS,
 GI_TOOL_CHOICE, GI_DED_RELEASE, GI_STRICT_MIN_RUN, N_GI) = range(18)
# GI_DED_RELEASE: 1 when a lot dedicated to a tool that is down may run on another tool of the group;
# GI_STRICT_MIN_RUN: 1 when a tool in its minimum run waits for a lot of its setup rather than change
(GF_LOAD, GF_UNLOAD, GF_SETUP, GF_TTF0, GF_TTF1, GF_TTF2, GF_REP0, GF_REP1, GF_REP2,
 GF_FIRST0, GF_FIRST1, GF_FIRST2, GF_DRIFT, GF_NOISE, GF_LEVEL0, GF_LEVEL1, GF_LEVEL2, GF_SENSOR_SD,
 GF_CBM_THRESHOLD, GF_CBM_LEAD, GF_CBM_TARGET, GF_CBM_DUR0, GF_CBM_DUR1, GF_CBM_DUR2,
 GF_WARN_LEVEL, GF_WARN_HORIZON, GF_WARN_WINDOW, GF_CASCADE_LOAD, N_GF) = range(29)
# GF_CASCADE_LOAD: load minutes counted in a cascading tool's occupancy (GF_LOAD, or 0 when loading overlaps)

# ---- condition-driven maintenance of a tool group (GI_HEALTH != 0 when condition matters to it)
CBM_NONE, CBM_CONDITION, CBM_PREDICTIVE = range(3)
CBM_SLOT = MAX_PM  # pending-PM bit of a condition-based or predictive PM

# ---- static: PM table [group * MAX_PM + slot]
PI_KIND, PI_DUR_KIND, N_PI = range(3)
PF_EVERY, PF_FIRST, PF_DUR0, PF_DUR1, PF_DUR2, N_PF = range(6)

# ---- static: step table (global step index over all routes)
(SI_GROUP, SI_PRODUCT, SI_LAST, SI_TIME_KIND, SI_PER, SI_BMIN, SI_BMAX, SI_SETUP, SI_REWORK_TO,
 SI_QT_FROM, SI_QT_ANCHOR, SI_DEDICATE, SI_DED_ANCHOR, SI_PRIORITY, SI_CASCADE_PER_WAFER, SI_DED_SLOT,
 SI_MOVE_FROM, SI_MOVE_TO, SI_REWORK_BIT, N_SI) = range(20)
# a move from step a to step b draws the transport law in row si[a, SI_MOVE_FROM] + si[b, SI_MOVE_TO]
(SF_T0, SF_T1, SF_T2, SF_BWAIT, SF_SAMPLING, SF_REWORK_P, SF_QT_LIMIT, SF_MEAN, SF_REMAIN, SF_DEFECT,
 SF_CASCADE, N_SF) = range(12)

# ---- static: initial WIP, one row per lot (float: the due date; NaN = share of the route's due offset)
W_STREAM, W_STEP, W_DUE, N_W = range(4)

# ---- static: release stream table
RI_PRODUCT, RI_KIND, RI_LOT_SIZE, RI_PRIORITY, RI_WIP_CAP, RI_MAX_LOTS, RI_FIRST_STEP, N_RI = range(8)
RF_INTERVAL, RF_DUE, RF_START, RF_CT_BIN, RF_DIE_AREA, RF_ALPHA, RF_GROSS_DIES, N_RF = range(8)

# ---- per replication: scalars
# R_HEAP_N: events pending in the calendar (kernels/calendar.py); R_OUTBOX_N: events the current handler
# scheduled, waiting in the heap's out-box
# R_QBLOCK_FREE: the first free queue block (kernels/queues.py). The order puts what every event reads in
# the first 32-byte sector and what lot and queue moves read in the second (an L1 miss fetches a sector)
# (and spare columns make the row three whole sectors, so every replication's row starts on one)
(R_HEAP_N, R_OUTBOX_N, R_ERROR, R_EVENTS, R_QBLOCK_FREE, R_FREE_HEAD, R_LOTS_ALIVE, R_SNAP_I, R_LOG_N,
 R_SPARE0, R_SPARE1, R_SPARE2, N_RI_STATE) = range(13)
RS_NOW, N_RF_STATE = range(2)
# ERR_LOT_ROOM is a pause, not a failure: a release found the lot table full, so the replication stopped
# before taking that event and the host grows the table (twin/runner.py) and runs it on from there
ERR_NONE, ERR_LOT_CAPACITY, ERR_HEAP_CAPACITY, ERR_ROW_WIDTH, ERR_QUEUE_BLOCKS, ERR_LOT_ROOM = range(6)

# ---- per replication: tools, lots and groups. An L1 miss fetches only the 32-byte sectors it lacks, so the
# rows an event reads (ti, tf, li, qi, rep_i; qb's are 128 bytes) are whole numbers of sectors (spare columns
# pad them; a replication's block then starts on a sector too) and the fields an event reads together share
# one: a tool's state accounting reads TF_SINCE and its state's TF_E10 time, a job's start and end its phase
# times; a lot's queue moves and verdicts its first sector. lf (40 bytes) and qf (240) are left unpadded: a
# lot's float row is read in one or two sectors already, and 24 more bytes a lot slot is memory the GPU's
# replications need. tests/test_row_widths.py checks both rules; benchmarks/wave_trace.py counts the sectors
# an event reads, by table.
(T_STATE, T_SETUP, T_RUN, T_NLOTS, T_STEP, T_VER, T_PM_PENDING, T_JOB_WAFERS,
 T_FAIL_VER, T_FAIL_PENDING, T_INTERRUPTED, T_FAILS, T_PMS, T_SPARE0, T_SPARE1, T_SPARE2, N_TI) = range(17)
(TF_SINCE, TF_E10_0, TF_E10_1, TF_E10_2, TF_E10_3, TF_E10_4, TF_STANDBY_LOADED, TF_INSIDE_UNTIL,
 TF_PHASE_END, TF_PROC_PENDING, TF_TTF_LEFT, TF_BUSY_START, TF_PM_W0, TF_PM_W1, TF_PM_W2, TF_PM_W3,
 TF_PHASE_LEFT, TF_COND, TF_LEVEL, TF_RENEW_T, TF_FIT_N, TF_FIT_SW, TF_FIT_SWW, TF_FIT_SY,
 TF_FIT_SWY, TF_RENEW_W, TF_WARN_T, TF_SPARE, N_TF) = range(29)
# TF_INSIDE_UNTIL: when the last lot started on a cascading tool leaves it; TF_STANDBY_LOADED: window time the
# tool stood in standby with such a lot still inside (busy under the busy-while-any-lot-inside reading)

# ---- per replication: lots
# a lot remembers one tool per dedication chain of its route (SI_DED_SLOT picks the slot)
MAX_DED = 4
# L_REWORKED: bit SI_REWORK_BIT of a rework-once step is set once the lot was reworked there
MAX_REWORK_ONCE = 31
# L_NEXT: the next free slot while the slot is free; L_QBLOCK: the queue block that holds the lot while it waits
(L_STEP, L_STATUS, L_QBLOCK, L_WAFERS, L_PRIORITY, L_STREAM, L_QT_ANCHOR, L_REWORKED,
 L_NEXT, L_SPARE0, L_SPARE1, L_SPARE2, L_DED_TOOL0) = range(13)
N_LI = L_DED_TOOL0 + MAX_DED
LF_RELEASE, LF_DUE, LF_ENTRY, LF_QT_T, LF_DEFECTS, N_LF = range(6)

# ---- per replication: tool groups; Q_HEAD, Q_TAIL: the first and last block of the group's queue
# Q_HOT, Q_SUPER_HOT: queued lots of priority >= 1 and == 2 (lets a priority-then-FIFO rule stop early)
# Q_SPARE pads a group's row to 32 bytes, one sector: a dispatch reads its group's row in one fetch
Q_HEAD, Q_TAIL, Q_LEN, Q_WAIT_N, Q_IDLE, Q_HOT, Q_SUPER_HOT, Q_SPARE, N_QI = range(9)
# ---- per replication: queue blocks (kernels/queues.py): a group's queue is a list of blocks of lot ids in
# arrival order; a row is one 128-byte line: QB_LOTS lot ids, then the count and the list links
QB_LOTS = 29
QB_COUNT, QB_NEXT, QB_PREV, N_QB = range(QB_LOTS, QB_LOTS + 4)
# failure warnings of a watched group: true / false / pre-empted by PM, failures warned of, lead-time sum,
# and a histogram of lead times over (0, window] in N_LEAD_BINS bins
N_LEAD_BINS = 20
(QF_AREA, QF_SINCE, QF_WAIT_SUM, QF_DEFECT_WAFERS, QF_TIMEOUT_AT, QF_WARN_TRUE, QF_WARN_FALSE, QF_WARN_PREEMPTED,
 QF_WARN_LEAD_SUM, QF_LEAD_H0) = range(10)
N_QF = QF_LEAD_H0 + N_LEAD_BINS

# ---- per replication: release streams (statistics)
S_WIP, S_RELEASED, S_DONE, S_INITIAL, N_SI_STATE = range(5)
(SS_DONE, SS_CT_SUM, SS_CT_SQ, SS_ONTIME, SS_WIP_AREA, SS_WIP_SINCE, SS_WAFERS_DONE,
 SS_GOOD_DIES, SS_QT_VIOL, SS_RELEASED, SS_CT_N, SS_WINDOW_DONE, N_SF_STATE) = range(13)
# SS_WINDOW_DONE: lots released in the window [warmup, horizon] and finished by its end
N_CT_BINS = 400

# ---- replication-0 lot log
LOG_STREAM, LOG_RELEASE, LOG_DONE, LOG_DUE, LOG_PRIORITY, LOG_WAFERS, LOG_DEFECTS, N_LOG = range(8)
